//go:build linux

package handoff

import (
	"bufio"
	"bytes"
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

// site is a router, a client and LB nodes that all hold the VIP on lo and
// listen on it, with the router's route to the VIP pointing at one node.
type site struct {
	router, client *netnstest.NS
	nodes          []*netnstest.NS
	uplinks        []string
	addrs          []netip.Addr
}

var vip = netip.MustParseAddrPort("192.0.2.10:80")

func newSite(t testing.TB, n int) *site {
	s := &site{router: netnstest.New(t, "hr"), client: netnstest.New(t, "hc")}
	netnstest.Veth(t, s.client, "198.51.100.2/24", s.router, "198.51.100.1/24")
	s.client.IP(t, "route", "add", "default", "via", "198.51.100.1")
	s.router.Exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for i := range n {
		node := netnstest.New(t, fmt.Sprintf("hn%d", i+1))
		routerAddr := fmt.Sprintf("203.0.113.%d", 4*i+1)
		nodeAddr := fmt.Sprintf("203.0.113.%d", 4*i+2)
		l := netnstest.Veth(t, node, nodeAddr+"/30", s.router, routerAddr+"/30")
		node.IP(t, "route", "add", "default", "via", routerAddr)
		node.AddAddr(t, "lo", vip.Addr().String()+"/32")
		s.nodes = append(s.nodes, node)
		s.uplinks = append(s.uplinks, l.A)
		s.addrs = append(s.addrs, netip.MustParseAddr(nodeAddr))
		echo(t, node)
	}
	s.routeTo(t, 0)
	return s
}

// routeTo points the router's route to the VIP at node i, as a withdrawal
// or an ECMP rehash does.
func (s *site) routeTo(t testing.TB, i int) {
	s.router.IP(t, "route", "replace", vip.Addr().String()+"/32", "via", s.addrs[i].String())
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

// echo serves line echo on the VIP inside ns, prefixing each line with the
// node's name so the client sees which node answered.
func echo(t testing.TB, ns *netnstest.NS) {
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp4", vip.String())
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

func (s *site) dial(t testing.TB) *conn {
	var c net.Conn
	if err := s.client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", vip.String(), 5*time.Second)
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
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d-nodes", n), func(t *testing.T) {
			testHandoff(t, n)
		})
	}
}

func testHandoff(t *testing.T, n int) {
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
			VIPs:    []netip.AddrPort{vip},
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
		conns[i] = s.dial(t)
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
	_ = bytes.MinRead
}
