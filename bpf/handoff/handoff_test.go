//go:build linux

package handoff

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/test/netnstest"
)

// mustLoad loads the committed objects or skips when the kernel or the
// privileges do not allow it.
func mustLoad(t testing.TB) *Datapath {
	t.Helper()
	netnstest.RequireRoot(t)
	d, err := Load()
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("needs CAP_BPF, CAP_NET_ADMIN and a kernel with BTF and tcx (>= 6.6): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// apply is Apply that skips the test when the kernel lacks a feature.
func apply(t testing.TB, d *Datapath, cfg Config) {
	t.Helper()
	err := d.Apply(cfg)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("flow handoff not supported here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// site is a router, a client and LB nodes that all hold the VIPs (IPv4
// and IPv6) on lo and listen on them, with the router's routes to the VIPs
// pointing at one node. The nodes reach each other over IPv4 only: the
// outer packets of handed-off IPv6 are IPv4.
type site struct {
	router, client *netnstest.NS
	nodes          []*netnstest.NS
	uplinks        []string
	addrs          []netip.Addr
	addrs6         []netip.Addr // the nodes' IPv6 addresses towards the router
}

var (
	vip  = netip.MustParseAddrPort("192.0.2.10:80")
	vip6 = netip.MustParseAddrPort("[2001:db8::10]:80")
)

func newSite(t testing.TB, n int) *site {
	s := &site{router: netnstest.New(t, "hr"), client: netnstest.New(t, "hc")}
	netnstest.Veth(t, s.client, "198.51.100.2/24,2001:db8:c::2/64", s.router, "198.51.100.1/24,2001:db8:c::1/64")
	s.client.IP(t, "route", "add", "default", "via", "198.51.100.1")
	s.client.IP(t, "-6", "route", "add", "default", "via", "2001:db8:c::1")
	s.router.Exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	for i := range n {
		node := netnstest.New(t, fmt.Sprintf("hn%d", i+1))
		routerAddr := fmt.Sprintf("203.0.113.%d", 4*i+1)
		nodeAddr := fmt.Sprintf("203.0.113.%d", 4*i+2)
		routerAddr6, nodeAddr6 := fmt.Sprintf("2001:db8:%d::1", i+1), fmt.Sprintf("2001:db8:%d::2", i+1)
		l := netnstest.Veth(t, node, nodeAddr+"/30,"+nodeAddr6+"/64", s.router, routerAddr+"/30,"+routerAddr6+"/64")
		node.IP(t, "route", "add", "default", "via", routerAddr)
		node.IP(t, "-6", "route", "add", "default", "via", routerAddr6)
		node.AddAddr(t, "lo", vip.Addr().String()+"/32")
		node.AddAddr(t, "lo", vip6.Addr().String()+"/128")
		s.nodes = append(s.nodes, node)
		s.uplinks = append(s.uplinks, l.A)
		s.addrs = append(s.addrs, netip.MustParseAddr(nodeAddr))
		s.addrs6 = append(s.addrs6, netip.MustParseAddr(nodeAddr6))
		echo(t, node, vip)
		echo(t, node, vip6)
	}
	s.routeTo(t, 0)
	return s
}

// routeTo points the router's routes to the VIPs at node i, as a
// withdrawal or an ECMP rehash does.
func (s *site) routeTo(t testing.TB, i int) {
	s.router.IP(t, "route", "replace", vip.Addr().String()+"/32", "via", s.addrs[i].String())
	s.router.IP(t, "-6", "route", "replace", vip6.Addr().String()+"/128", "via", s.addrs6[i].String())
}

// peers is every node address but node i's.
func (s *site) peers(i int) []netip.Addr {
	var out []netip.Addr
	for j, a := range s.addrs {
		if j != i {
			out = append(out, a)
		}
	}
	return out
}

// echo serves line echo on ap inside ns, prefixing each line with the
// node's name so the client sees which node answered.
func echo(t testing.TB, ns *netnstest.NS, ap netip.AddrPort) {
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", ap.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, ns.Name+" "+line); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// conn is a client connection to the VIP.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func (s *site) dial(t testing.TB) *conn { return s.dialVIP(t, vip) }

// dialVIP connects the client to ap.
func (s *site) dialVIP(t testing.TB, ap netip.AddrPort) *conn {
	var c net.Conn
	if err := s.client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", ap.String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{c: c, r: bufio.NewReader(c)}
}

// ask sends msg and returns the name of the node that answered.
func (c *conn) ask(msg string) (string, error) {
	c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	node, got, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	if got != msg {
		return "", fmt.Errorf("sent %d bytes, got back %d", len(msg), len(got))
	}
	return node, nil
}

func (s *site) mustAsk(t testing.TB, c *conn, msg string, want int) {
	t.Helper()
	node, err := c.ask(msg)
	if err != nil {
		t.Fatalf("connection %s: %v", c.c.LocalAddr(), err)
	}
	if node != s.nodes[want].Name {
		t.Fatalf("connection %s answered by %s, want %s", c.c.LocalAddr(), node, s.nodes[want].Name)
	}
}

// TestRouteMoveResetsWithoutHandoff is the control: without the programs a
// connection whose route moves to the other node is reset.
func TestRouteMoveResetsWithoutHandoff(t *testing.T) {
	netnstest.RequireRoot(t)
	s := newSite(t, 2)
	c := s.dial(t)
	s.mustAsk(t, c, "hello", 0)
	s.routeTo(t, 1)
	_, err := c.ask("again")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after moving the route, got %v, want a reset from the node without the socket", err)
	}
}

// TestHandoff moves the route between nodes and checks that connections
// keep being answered by the node that owns them, small and full-size
// segments alike, and that the counters say which node forwarded and which
// delivered. With three nodes a node forwards to both peers and exactly the
// owner delivers.
func TestHandoff(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		vip  netip.AddrPort
	}{{"2-nodes", 2, vip}, {"3-nodes", 3, vip}, {"ipv6-2-nodes", 2, vip6}, {"ipv6-3-nodes", 3, vip6}} {
		t.Run(tc.name, func(t *testing.T) {
			testHandoff(t, tc.n, tc.vip)
		})
	}
}

func testHandoff(t *testing.T, n int, target netip.AddrPort) {
	mustLoad(t) // skip early when unsupported
	s := newSite(t, n)
	dps := make([]*Datapath, n)
	for i, node := range s.nodes {
		dps[i] = mustLoad(t)
		apply(t, dps[i], Config{
			NetNS:   node.Fd(),
			Uplinks: []string{s.uplinks[i]},
			Local:   s.addrs[i],
			Peers:   s.peers(i),
			VIPs:    []netip.AddrPort{vip, vip6},
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, d := range dps {
				c, _ := d.Counters()
				t.Logf("node %d counters: %+v", i+1, c)
				out, _ := s.nodes[i].ExecErr("sh", "-c", "nstat -a | grep -v ' 0 ' ; ip -d link show lbh0; ip -s link show lbh0; sysctl net.ipv4.conf.all.rp_filter net.ipv4.conf.lbh0.rp_filter")
				t.Log(out)
			}
		}
	})
	big := strings.Repeat("x", 64<<10) // full-size segments
	conns := make([]*conn, n)
	for i := range n {
		s.routeTo(t, i)
		conns[i] = s.dialVIP(t, target)
		s.mustAsk(t, conns[i], "hello", i)
	}
	// Every connection, through every node.
	for via := range n {
		s.routeTo(t, via)
		for owner, c := range conns {
			s.mustAsk(t, c, fmt.Sprintf("via %d", via), owner)
			s.mustAsk(t, c, big, owner)
		}
	}
	for i, d := range dps {
		c, err := d.Counters()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node %d: %+v", i+1, c)
		if c.Forwarded == 0 || c.Delivered == 0 || c.ForwardErrors != 0 || c.NoPeer != 0 {
			t.Errorf("node %d counters %+v: want packets forwarded and delivered, no errors", i+1, c)
		}
		if n == 2 && c.Dropped != 0 {
			t.Errorf("node %d dropped %d forwarded packets; with two nodes the peer always owns them", i+1, c.Dropped)
		}
		if n > 2 && c.Dropped == 0 {
			t.Errorf("node %d dropped no forwarded packet; with %d nodes every node gets copies it does not own", i+1, n)
		}
	}
	// A last check that nothing was answered twice or lost: the bytes
	// still line up on every connection.
	for owner, c := range conns {
		s.mustAsk(t, c, "bye", owner)
	}
}
