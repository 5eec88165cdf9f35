package testbed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lbctl/lbctl/internal/netns"
)

// Status is a snapshot of the testbed.
type Status struct {
	Namespaces []NamespaceStatus `json:"namespaces"`
	Procs      []ProcStatus      `json:"procs"`
	Nodes      []NodeStatus      `json:"nodes"`
	// Sessions are the BGP sessions of every BIRD the testbed runs.
	Sessions []Session `json:"sessions"`
	// Routes are the router's VIP routes.
	Routes []Route `json:"routes"`
	// Errors are what could not be asked (a BIRD socket not answering).
	Errors []string `json:"errors,omitempty"`
}

// NamespaceStatus says whether a namespace exists.
type NamespaceStatus struct {
	Name    string `json:"name"`
	Present bool   `json:"present"`
}

// ProcStatus is a recorded process and whether it runs.
type ProcStatus struct {
	Proc
	Alive bool `json:"alive"`
}

// NodeStatus is a launched LB node's process (PID 0 for plain namespaces).
type NodeStatus struct {
	Name  string `json:"name"`
	NetNS string `json:"netns"`
	PID   int    `json:"pid,omitempty"`
	Alive bool   `json:"alive"`
}

// Session is one BGP protocol of a BIRD of the testbed.
type Session struct {
	// Speaker is "rr", "router" or a node name.
	Speaker     string `json:"speaker"`
	Name        string `json:"name"`
	State       string `json:"state"`
	Info        string `json:"info"`
	Established bool   `json:"established"`
}

// OK reports whether every namespace exists, every process runs, every BGP
// session of the route reflector with the router is established and
// nothing failed to answer.
func (st *Status) OK() bool {
	for _, n := range st.Namespaces {
		if !n.Present {
			return false
		}
	}
	for _, p := range st.Procs {
		if !p.Alive {
			return false
		}
	}
	for _, n := range st.Nodes {
		if n.PID != 0 && !n.Alive {
			return false
		}
	}
	for _, s := range st.Sessions {
		if (s.Speaker == "router" || s.Name == "rtr") && !s.Established {
			return false
		}
	}
	return len(st.Errors) == 0
}

// Status reports namespaces, processes, BGP sessions (from the BIRD
// control sockets) and the router's VIP routes.
func (s *Site) Status(ctx context.Context) (*Status, error) {
	st := &Status{}
	s.mu.Lock()
	names := slices.Clone(s.Namespaces)
	procs := slices.Clone(s.Procs)
	s.mu.Unlock()
	for _, ns := range names {
		_, err := os.Stat(filepath.Join(NetNSDir, ns))
		st.Namespaces = append(st.Namespaces, NamespaceStatus{Name: ns, Present: err == nil})
	}
	for _, p := range procs {
		st.Procs = append(st.Procs, ProcStatus{Proc: p, Alive: p.Alive()})
	}
	for _, n := range s.Nodes {
		st.Nodes = append(st.Nodes, NodeStatus{Name: n.Name, NetNS: n.NetNS, PID: n.PID, Alive: n.PID == 0 || alive(n.PID, n.PIDStart)})
	}
	speakers := []struct{ name, sock string }{
		{"rr", filepath.Join(s.Dir, "rr", "bird.ctl")},
		{"router", filepath.Join(s.Dir, "router", "bird.ctl")},
	}
	for _, n := range s.Nodes {
		if p := s.proc("bird-" + n.Name); p != nil && p.Alive() {
			speakers = append(speakers, struct{ name, sock string }{n.Name, filepath.Join(n.Dir, "bird.ctl")})
		} else if sock := s.nodeBirdSocketPath(n.Name); sock != "" {
			// A systemd node's BIRD runs once lbctl installed a release.
			if _, err := os.Stat(sock); err == nil {
				speakers = append(speakers, struct{ name, sock string }{n.Name, sock})
			}
		}
	}
	for _, sp := range speakers {
		ps, err := protocols(ctx, sp.sock)
		if err != nil {
			st.Errors = append(st.Errors, fmt.Sprintf("%s: %v", sp.name, err))
			continue
		}
		for _, p := range ps {
			if p.Proto != "BGP" {
				continue
			}
			st.Sessions = append(st.Sessions, Session{Speaker: sp.name, Name: p.Name, State: p.State, Info: strings.TrimSpace(p.Info), Established: p.Established()})
		}
	}
	routes, err := s.Routes(ctx)
	if err != nil {
		st.Errors = append(st.Errors, err.Error())
	}
	st.Routes = routes
	if st.Routes == nil {
		st.Routes = []Route{}
	}
	return st, nil
}

// Route is a VIP route in the router's kernel table.
type Route struct {
	Prefix   netip.Prefix `json:"prefix"`
	NextHops []NextHop    `json:"nexthops"`
}

// NextHop is one path of a route.
type NextHop struct {
	Via    netip.Addr `json:"via"`
	Dev    string     `json:"dev"`
	Weight int        `json:"weight,omitempty"`
}

// String is "192.0.2.10/32 via 198.51.100.11 dev br-core, via ...".
func (r Route) String() string {
	hops := make([]string, len(r.NextHops))
	for i, h := range r.NextHops {
		hops[i] = fmt.Sprintf("via %s dev %s", h.Via, h.Dev)
	}
	return r.Prefix.String() + " " + strings.Join(hops, ", ")
}

// ipRoute is the part of `ip -j route` output the testbed reads.
type ipRoute struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Nexthops []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
		Weight  int    `json:"weight"`
	} `json:"nexthops"`
}

// Routes returns the router's kernel routes installed by BIRD to VIPs
// (inside 192.0.2.0/24 or 2001:db8::/32), sorted, with every next hop:
// a VIP announced by both LB nodes has two.
func (s *Site) Routes(ctx context.Context) ([]Route, error) {
	var out []Route
	for _, fam := range []string{"-4", "-6"} {
		b, err := exec.CommandContext(ctx, "ip", "-j", "-n", s.Router, fam, "route", "show", "proto", "bird").Output()
		if err != nil {
			return nil, fmt.Errorf("testbed: router routes: %w", err)
		}
		var rs []ipRoute
		if len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, &rs); err != nil {
				return nil, fmt.Errorf("testbed: router routes: %w", err)
			}
		}
		for _, r := range rs {
			p, err := parseDst(r.Dst, fam == "-6")
			if err != nil || !(vipNet4.Contains(p.Addr()) || vipNet6.Contains(p.Addr())) {
				continue
			}
			if coreNet6.Overlaps(p) || clientNet6.Overlaps(p) || backendNet6.Overlaps(p) {
				continue
			}
			rt := Route{Prefix: p}
			if r.Gateway != "" {
				if a, err := netip.ParseAddr(r.Gateway); err == nil {
					rt.NextHops = append(rt.NextHops, NextHop{Via: a, Dev: r.Dev})
				}
			}
			for _, h := range r.Nexthops {
				if a, err := netip.ParseAddr(h.Gateway); err == nil {
					rt.NextHops = append(rt.NextHops, NextHop{Via: a, Dev: h.Dev, Weight: h.Weight})
				}
			}
			slices.SortFunc(rt.NextHops, func(a, b NextHop) int { return a.Via.Compare(b.Via) })
			out = append(out, rt)
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out, nil
}

func parseDst(dst string, v6 bool) (netip.Prefix, error) {
	if dst == "default" {
		if v6 {
			return netip.MustParsePrefix("::/0"), nil
		}
		return netip.MustParsePrefix("0.0.0.0/0"), nil
	}
	if strings.Contains(dst, "/") {
		return netip.ParsePrefix(dst)
	}
	a, err := netip.ParseAddr(dst)
	if err != nil {
		return netip.Prefix{}, err
	}
	return hostPrefix(a), nil
}

// clientDo runs fn on a thread inside the client namespace: sockets it
// opens are the client's (goroutines it starts are not inside).
func (s *Site) clientDo(fn func() error) error {
	return netns.DoPath(filepath.Join(NetNSDir, s.Client), fn)
}

// Dial connects from the client namespace. address must hold an IP
// address, not a name.
func (s *Site) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := s.clientDo(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// HTTPClient returns an HTTP client whose connections start in the client
// namespace. Host names in hosts are dialled at the given address (so
// requests carry the service's name in Host and SNI); it trusts the
// testbed CA and does not follow redirects.
func (s *Site) HTTPClient(hosts map[string]netip.Addr) (*http.Client, error) {
	pool, err := s.CAPool()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if a, ok := hosts[host]; ok {
				addr = net.JoinHostPort(a.String(), port)
			} else if _, err := netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("testbed: no address for %q", host)
			}
			return s.Dial(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		DisableKeepAlives:   true,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// CAPool is a pool holding the testbed CA.
func (s *Site) CAPool() (*x509.CertPool, error) {
	b, err := os.ReadFile(s.CA)
	if err != nil {
		return nil, fmt.Errorf("testbed: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("testbed: CA: no certificate in " + s.CA)
	}
	return pool, nil
}

// execIn runs argv to completion inside the named network namespace (one of
// Namespaces) and returns its combined output.
func (s *Site) execIn(ctx context.Context, netns string, argv ...string) ([]byte, error) {
	if !slices.Contains(s.Namespaces, netns) {
		return nil, fmt.Errorf("testbed: no namespace %q", netns)
	}
	if len(argv) == 0 {
		return nil, errors.New("testbed: exec: empty command")
	}
	full := append([]string{"--net=" + filepath.Join(NetNSDir, netns), "--"}, argv...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("testbed: %s in %s: %w", strings.Join(argv, " "), netns, err)
	}
	return out, nil
}
