package nft

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/test/netnstest"
)

// TestHandoffAdmission sends encapsulated (VXLAN port) datagrams to an LB
// node from a peer LB node and from another host: the peer's arrives, the
// other's is dropped and counted in handoff_refused.
func TestHandoffAdmission(t *testing.T) {
	lb := netnstest.New(t, "nft-ho-lb")
	peer := netnstest.New(t, "nft-ho-peer")
	stranger := netnstest.New(t, "nft-ho-x")
	netnstest.Veth(t, peer, "198.51.100.12/24", lb, "198.51.100.11/24")
	netnstest.Veth(t, stranger, "203.0.113.9/24", lb, "203.0.113.1/24")
	k, err := New(WithNetNS(lb.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	fw := model.Firewall{
		VIPs4:   []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Accept4: []model.AddrPort{{Addr: netip.MustParseAddr("192.0.2.10"), Port: 443}},
		Handoff: &model.Handoff{Port: model.HandoffPort, MSS: model.HandoffMSS, Peers4: []netip.Addr{netip.MustParseAddr("198.51.100.12")}},
	}
	if err := k.Apply(fw); err != nil {
		t.Fatal(err)
	}
	if n, ok, err := k.HandoffRefused(); err != nil || !ok || n != 0 {
		t.Fatalf("fresh counter: %d %v %v", n, ok, err)
	}
	// A UDP socket on the VXLAN port stands in for the handoff device.
	var sock *net.UDPConn
	if err := lb.Do(func() (err error) {
		sock, err = net.ListenUDP("udp4", &net.UDPAddr{Port: model.HandoffPort})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	send := func(from *netnstest.NS, to, msg string) {
		t.Helper()
		if err := from.Do(func() error {
			c, err := net.Dial("udp4", net.JoinHostPort(to, "4789"))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte(msg))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	send(stranger, "203.0.113.1", "forged")
	send(peer, "198.51.100.11", "from peer")
	buf := make([]byte, 64)
	sock.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := sock.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("the peer's datagram did not arrive: %v", err)
	}
	if got := string(buf[:n]); got != "from peer" || from.IP.String() != "198.51.100.12" {
		t.Fatalf("got %q from %s, want only the peer's datagram", got, from)
	}
	sock.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, from, err := sock.ReadFromUDP(buf); err == nil {
		t.Fatalf("a second datagram arrived: %q from %s", buf[:n], from)
	}
	if n, ok, err := k.HandoffRefused(); err != nil || !ok || n != 1 {
		t.Fatalf("handoff_refused = %d (ok %v, %v), want 1", n, ok, err)
	}
}

// TestHandoffClampsMSS connects to a VIP port over IPv4 and IPv6 through a
// 1500-byte link: the node's SYN-ACK announces at most model.HandoffMSS
// (IPv4) and model.HandoffMSS-model.HandoffIPv6Extra (IPv6), so that a
// full-size segment from the client still fits the link once a peer node
// hands it off inside VXLAN.
func TestHandoffClampsMSS(t *testing.T) {
	lb := netnstest.New(t, "nft-mss-lb")
	client := netnstest.New(t, "nft-mss-c")
	netnstest.Veth(t, client, "198.51.100.2/24,2001:db8:c::2/64", lb, "198.51.100.1/24,2001:db8:c::1/64")
	vip4, vip6 := netip.MustParseAddrPort("198.51.100.1:443"), netip.MustParseAddrPort("[2001:db8:c::1]:443")
	k, err := New(WithNetNS(lb.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(model.Firewall{
		VIPs4: []netip.Addr{vip4.Addr()}, VIPs6: []netip.Addr{vip6.Addr()},
		Accept4: []model.AddrPort{{Addr: vip4.Addr(), Port: 443}},
		Accept6: []model.AddrPort{{Addr: vip6.Addr(), Port: 443}},
		Handoff: &model.Handoff{Port: model.HandoffPort, MSS: model.HandoffMSS, Peers4: []netip.Addr{netip.MustParseAddr("198.51.100.12")}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vip netip.AddrPort
		max int
	}{{vip4, model.HandoffMSS}, {vip6, model.HandoffMSS - model.HandoffIPv6Extra}} {
		var ln net.Listener
		if err := lb.Do(func() (err error) { ln, err = net.Listen("tcp", tc.vip.String()); return err }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var c net.Conn
		if err := client.Do(func() (err error) { c, err = net.DialTimeout("tcp", tc.vip.String(), 5*time.Second); return err }); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var mss int
		var serr error
		if err := raw.Control(func(fd uintptr) { mss, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) }); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		// Without the clamp: 1460 (IPv4) or 1440 (IPv6), less options.
		if mss > tc.max || mss < tc.max-40 {
			t.Errorf("%s: the client's MSS is %d, want the clamp's %d (less TCP options)", tc.vip, mss, tc.max)
		}
	}
}
