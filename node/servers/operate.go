package servers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lbctl/lbctl/health/haproxy"
	"github.com/lbctl/lbctl/node/plan"
)

// Node is what a maintenance command needs of the node.
type Node struct {
	// Dir is the state directory holding the state file.
	Dir string
	// Socket returns a VIP's admin socket.
	Socket func(vip string) string
	// VIPs are the installed VIPs (the current release's).
	VIPs []plan.VIP
}

// Request is one lbctl server command.
type Request struct {
	Server string
	// VIP limits the command to one VIP; empty means every VIP.
	VIP string
	// State is Drain, Maint or "ready" (enable).
	State string
	// Force drains or disables even when a backend would keep fewer
	// servers up than its min_up.
	Force bool
	Now   time.Time
}

// ErrBelowMinUp means the command would leave a backend with fewer servers
// up than the intents ask for.
var ErrBelowMinUp = errors.New("below min_up")

// Do records the request in the state file and applies it to every VIP's
// HAProxy at once. It refuses (changing nothing) a server no installed VIP
// has, a VIP that is not installed, and, without Force, taking out a server
// that would leave a backend below its min_up.
func Do(ctx context.Context, n Node, req Request) ([]Change, error) {
	if req.State != Drain && req.State != Maint && req.State != "ready" {
		return nil, fmt.Errorf("server %s: state %q is not drain, maint or ready", req.Server, req.State)
	}
	vips, err := n.selected(req)
	if err != nil {
		return nil, err
	}
	f, err := Read(n.Dir)
	if err != nil {
		return nil, err
	}
	// Look at every VIP first: where the server is, and what taking it
	// out leaves.
	sv := survey(ctx, n, vips, req)
	if len(sv.using) == 0 {
		return nil, sv.notFound(req.Server)
	}
	if len(sv.below) > 0 && !req.Force {
		return nil, fmt.Errorf("server %s: %w: %w (--force to take it out anyway)", req.Server, ErrBelowMinUp, errors.Join(sv.below...))
	}
	if req.State == "ready" {
		f.Remove(req.Server, req.VIP)
	} else {
		now := req.Now
		if now.IsZero() {
			now = time.Now()
		}
		f.Set(req.Server, req.VIP, req.State, now)
	}
	if err := Write(n.Dir, f); err != nil {
		return nil, err
	}
	var enable []string
	if req.State == "ready" {
		enable = n.serversNamed(ctx, sv.using, req.Server)
	}
	errs := sv.errs
	var changes []Change
	for _, vip := range sv.using {
		ch, err := Apply(ctx, n.Socket(vip), vip, f, enable)
		changes = append(changes, ch...)
		errs = append(errs, err)
	}
	return changes, errors.Join(errs...)
}

// selected returns the VIPs a request is about: every installed VIP, or
// the one it names, which must be installed.
func (n Node) selected(req Request) ([]plan.VIP, error) {
	var vips []plan.VIP
	for _, v := range n.VIPs {
		if req.VIP == "" || v.Name == req.VIP {
			vips = append(vips, v)
		}
	}
	if len(vips) > 0 {
		return vips, nil
	}
	var names []string
	for _, v := range n.VIPs {
		names = append(names, v.Name)
	}
	return nil, fmt.Errorf("server %s: no VIP %q installed (VIPs: %s)", req.Server, req.VIP, strings.Join(names, " "))
}

// serversNamed lists the HAProxy servers of the VIPs that the request's
// server name matches (those to enable again).
func (n Node) serversNamed(ctx context.Context, vips []string, server string) []string {
	var out []string
	for _, v := range vips {
		if stats, err := haproxy.Stats(ctx, n.Socket(v)); err == nil {
			for _, s := range stats {
				if Matches(s.Name, server) {
					out = append(out, s.Name)
				}
			}
		}
	}
	return out
}

// surveyed is what the VIPs' HAProxies say about a request's server.
type surveyed struct {
	using []string        // VIPs that have the server
	below []error         // backends taking it out would leave below min_up
	errs  []error         // VIPs that did not answer
	known map[string]bool // every server name seen
}

func survey(ctx context.Context, n Node, vips []plan.VIP, req Request) surveyed {
	sv := surveyed{known: map[string]bool{}}
	for _, v := range vips {
		stats, err := haproxy.Stats(ctx, n.Socket(v.Name))
		if err != nil {
			sv.errs = append(sv.errs, fmt.Errorf("VIP %s: %w", v.Name, err))
			continue
		}
		up := haproxy.UpCount(stats)
		found := false
		for _, s := range stats {
			sv.known[s.Name] = true
			if !Matches(s.Name, req.Server) {
				continue
			}
			found = true
			if req.State == "ready" || !s.Up() {
				continue
			}
			for _, b := range v.Backends {
				if b.Name == s.Backend && up[b.Name]-1 < b.MinUp {
					sv.below = append(sv.below, fmt.Errorf("VIP %s backend %s would keep %d of its servers up, min_up is %d", v.Name, b.Name, up[b.Name]-1, b.MinUp))
				}
			}
		}
		if found {
			sv.using = append(sv.using, v.Name)
		}
	}
	return sv
}

// notFound is the error for a server no VIP has.
func (sv surveyed) notFound(server string) error {
	if err := errors.Join(sv.errs...); err != nil {
		return fmt.Errorf("server %s: not found in a VIP that answered: %w", server, err)
	}
	names := make([]string, 0, len(sv.known))
	for k := range sv.known {
		names = append(names, k)
	}
	slices.Sort(names)
	return fmt.Errorf("server %s: no VIP has it (servers: %s)", server, strings.Join(names, " "))
}
