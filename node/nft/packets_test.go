package nft

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/test/netnstest"
)

// TestPackets sends real traffic between two namespaces: a client and an
// LB whose VIPs (192.0.2.10, 2001:db8::10) sit on lo. With the table in
// place, the declared port 443 is served, the undeclared 8080 (listening)
// and 9999 (not listening) are silently dropped — the client times out
// instead of being refused — ICMP echo to the VIP is answered, and traffic
// to the LB's own address is untouched.
func TestPackets(t *testing.T) {
	client := netnstest.New(t, "nft-client")
	lb := netnstest.New(t, "nft-lb")
	netnstest.Veth(t, client, "198.51.100.1/24,2001:db8:100::1/64", lb, "198.51.100.2/24,2001:db8:100::2/64")
	lb.AddAddr(t, "lo", "192.0.2.10/32")
	lb.AddAddr(t, "lo", "2001:db8::10/128")
	client.IP(t, "route", "add", "192.0.2.10/32", "via", "198.51.100.2")
	client.IP(t, "-6", "route", "add", "2001:db8::10/128", "via", "2001:db8:100::2")

	// Listeners in lb: on the VIPs at 443 and 8080, and on lb's own address.
	for _, addr := range []string{"192.0.2.10:443", "192.0.2.10:8080", "[2001:db8::10]:443", "[2001:db8::10]:8080", "198.51.100.2:8080"} {
		var ln net.Listener
		if err := lb.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, "hello from "+c.LocalAddr().String())
				c.Close()
			}
		}()
	}
	type result int
	const (
		served result = iota
		refused
		timedOut
		other
	)
	names := map[result]string{served: "served", refused: "refused", timedOut: "timed out (dropped)", other: "other error"}
	dial := func(addr string) (result, error) {
		var r result
		var derr error
		if err := client.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
			if err != nil {
				derr = err
				var ne net.Error
				switch {
				case errors.Is(err, syscall.ECONNREFUSED):
					r = refused
				case errors.As(err, &ne) && ne.Timeout():
					r = timedOut
				default:
					r = other
				}
				return nil
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil || !strings.HasPrefix(string(b), "hello from ") {
				r, derr = other, err
				return nil
			}
			r = served
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return r, derr
	}
	check := func(stage string, want map[string]result) {
		t.Helper()
		for addr, w := range want {
			if got, err := dial(addr); got != w {
				t.Errorf("%s: %s: %s (%v), want %s", stage, addr, names[got], err, names[w])
			}
		}
	}

	// Without the table everything listening is reachable: the drops below
	// are the table's doing, not the network's.
	check("no table", map[string]result{
		"192.0.2.10:443": served, "192.0.2.10:8080": served, "192.0.2.10:9999": refused,
		"[2001:db8::10]:443": served, "[2001:db8::10]:8080": served, "[2001:db8::10]:9999": refused,
	})

	k, err := New(WithNetNS(lb.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(model.Firewall{
		VIPs4:   []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		VIPs6:   []netip.Addr{netip.MustParseAddr("2001:db8::10")},
		Accept4: []model.AddrPort{{Addr: netip.MustParseAddr("192.0.2.10"), Port: 443}},
		Accept6: []model.AddrPort{{Addr: netip.MustParseAddr("2001:db8::10"), Port: 443}},
	}); err != nil {
		t.Fatal(err)
	}
	check("with table", map[string]result{
		"192.0.2.10:443": served, "192.0.2.10:8080": timedOut, "192.0.2.10:9999": timedOut,
		"[2001:db8::10]:443": served, "[2001:db8::10]:8080": timedOut, "[2001:db8::10]:9999": timedOut,
		"198.51.100.2:8080": served, // not a VIP: untouched
	})
	for _, vip := range []string{"192.0.2.10", "2001:db8::10"} {
		if err := client.Do(func() error { return ping(vip) }); err != nil {
			t.Errorf("ping %s with table: %v", vip, err)
		}
	}

	// Deleting the table lets 8080 through again.
	if err := k.Delete(); err != nil {
		t.Fatal(err)
	}
	check("table deleted", map[string]result{"192.0.2.10:8080": served, "[2001:db8::10]:8080": served})
}

// ping sends one ICMP echo to addr and waits up to 2 s for the reply.
func ping(addr string) error {
	ip := net.ParseIP(addr)
	network, laddr, typ, proto := "ip4:icmp", "0.0.0.0", icmp.Type(ipv4.ICMPTypeEcho), 1
	if ip.To4() == nil {
		network, laddr, typ, proto = "ip6:ipv6-icmp", "::", ipv6.ICMPTypeEchoRequest, 58
	}
	c, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: 1, Data: []byte("lbctl")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: ip}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		if (m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply) && from.String() == ip.String() {
			return nil
		}
	}
}
