package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// BirdPath is one path of a route in `birdc show route all` output: the
// next hop, whether BIRD chose it as best, and its attribute lines.
type BirdPath struct {
	Via   netip.Addr
	Best  bool
	Attrs string
}

// ShowRouteAll runs `show route all PREFIX` at the route reflector ("rr")
// or the router ("router") and returns BIRD's output and its paths.
func (s *Site) ShowRouteAll(ctx context.Context, speaker string, p netip.Prefix) (string, []BirdPath, error) {
	if speaker != "rr" && speaker != "router" {
		return "", nil, fmt.Errorf("testbed: no BIRD speaker %q (rr, router)", speaker)
	}
	sock := filepath.Join(s.Dir, speaker, "bird.ctl")
	b, err := exec.CommandContext(ctx, "birdc", "-s", sock, "show", "route", "all", p.String()).CombinedOutput()
	if err != nil {
		return string(b), nil, fmt.Errorf("testbed: birdc at %s: %w: %s", speaker, err, b)
	}
	return string(b), parseBirdPaths(string(b)), nil
}

// parseBirdPaths splits `show route all` output into paths: each starts
// at a line holding "unicast [" (" * " marks the best), its next hop on a
// "via" line.
func parseBirdPaths(out string) []BirdPath {
	var paths []BirdPath
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "unicast [") {
			paths = append(paths, BirdPath{Best: strings.Contains(line, "] * ")})
			continue
		}
		if len(paths) == 0 {
			continue
		}
		cur := &paths[len(paths)-1]
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "via" && !cur.Via.IsValid() {
			cur.Via, _ = netip.ParseAddr(f[1])
			continue
		}
		cur.Attrs += strings.TrimSpace(line) + "\n"
	}
	return paths
}

// WaitRouteVia waits until the router's kernel route to p has exactly the
// IPv4 core addresses of the named nodes as next hops.
func (s *Site) WaitRouteVia(ctx context.Context, p netip.Prefix, nodes []string, timeout time.Duration) error {
	var want []netip.Addr
	for _, name := range nodes {
		n := s.Node(name)
		if n == nil {
			return fmt.Errorf("testbed: no node %q", name)
		}
		want = append(want, n.Core4)
	}
	slices.SortFunc(want, netip.Addr.Compare)
	start := time.Now()
	for {
		rs, err := s.Routes(ctx)
		if err != nil {
			return err
		}
		var got []netip.Addr
		last := p.String() + " (no route)"
		if i := slices.IndexFunc(rs, func(r Route) bool { return r.Prefix == p }); i >= 0 {
			for _, h := range rs[i].NextHops {
				got = append(got, h.Via)
			}
			last = rs[i].String()
		}
		if slices.Equal(got, want) {
			return nil
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("testbed: after %v the router's route is %s, want next hops %v", timeout, last, want)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// NodeOfHost returns the name (lb1, ...) of the node whose profile has the
// host name, or the host name itself when no node has it.
func (s *Site) NodeOfHost(hostname string) string {
	for _, n := range s.Nodes {
		if n.Hostname == hostname {
			return n.Name
		}
	}
	return hostname
}
