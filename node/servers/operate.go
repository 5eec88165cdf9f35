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
	var vips []plan.VIP
	for _, v := range n.VIPs {
		if req.VIP == "" || v.Name == req.VIP {
			vips = append(vips, v)
		}
	}
	if len(vips) == 0 {
		var names []string
		for _, v := range n.VIPs {
			names = append(names, v.Name)
		}
		return nil, fmt.Errorf("server %s: no VIP %q installed (VIPs: %s)", req.Server, req.VIP, strings.Join(names, " "))
	}
	f, err := Read(n.Dir)
	if err != nil {
		return nil, err
	}
	// Look at every VIP first: where the server is, and what taking it
	// out leaves.
	var using []string
	var below, errs []error
	known := map[string]bool{}
	for _, v := range vips {
		stats, err := haproxy.Stats(ctx, n.Socket(v.Name))
		if err != nil {
			errs = append(errs, fmt.Errorf("VIP %s: %w", v.Name, err))
			continue
		}
		up := haproxy.UpCount(stats)
		found := false
		for _, s := range stats {
			known[s.Name] = true
			if !Matches(s.Name, req.Server) {
				continue
			}
			found = true
			if req.State == "ready" || !s.Up() {
				continue
			}
			for _, b := range v.Backends {
				if b.Name == s.Backend && up[b.Name]-1 < b.MinUp {
					below = append(below, fmt.Errorf("VIP %s backend %s would keep %d of its servers up, min_up is %d", v.Name, b.Name, up[b.Name]-1, b.MinUp))
				}
			}
		}
		if found {
			using = append(using, v.Name)
		}
	}
	if len(using) == 0 {
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("server %s: not found in a VIP that answered: %w", req.Server, err)
		}
		names := make([]string, 0, len(known))
		for k := range known {
			names = append(names, k)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("server %s: no VIP has it (servers: %s)", req.Server, strings.Join(names, " "))
	}
	if len(below) > 0 && !req.Force {
		return nil, fmt.Errorf("server %s: %w: %w (--force to take it out anyway)", req.Server, ErrBelowMinUp, errors.Join(below...))
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
		for _, v := range using {
			if stats, err := haproxy.Stats(ctx, n.Socket(v)); err == nil {
				for _, s := range stats {
					if Matches(s.Name, req.Server) {
						enable = append(enable, s.Name)
					}
				}
			}
		}
	}
	var changes []Change
	for _, vip := range using {
		ch, err := Apply(ctx, n.Socket(vip), vip, f, enable)
		changes = append(changes, ch...)
		errs = append(errs, err)
	}
	return changes, errors.Join(errs...)
}
