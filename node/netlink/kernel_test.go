package netlink

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/lbctl/lbctl/node/netlink/netstate"
	"github.com/lbctl/lbctl/test/netnstest"
)

func kernelIn(t *testing.T, ns *netnstest.NS, opts ...Option) *Kernel {
	t.Helper()
	k, err := New(append([]Option{WithNetNS(ns.Fd())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func hostLo(t *testing.T) string {
	out, err := exec.Command("ip", "-o", "addr", "show", "dev", "lo").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show dev lo: %v: %s", err, out)
	}
	return string(out)
}

func TestKernelVIPsOnLo(t *testing.T) {
	hostBefore := hostLo(t)
	ns := netnstest.New(t, "nl-vips")
	// Addresses someone else put there (plain `ip addr add`).
	ns.AddAddr(t, "lo", "192.0.2.50/32")
	ns.AddAddr(t, "lo", "2001:db8::50/128")
	k := kernelIn(t, ns)
	if got, err := k.ListVIPs(); err != nil || len(got) != 0 {
		t.Fatalf("fresh namespace: ListVIPs = %v, %v (foreign addresses must not be listed)", got, err)
	}
	vips := pfx("192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128")
	for _, p := range vips {
		if err := k.AddVIP(p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := k.ListVIPs()
	if err != nil || !reflect.DeepEqual(got, vips) {
		t.Fatalf("ListVIPs = %v, %v; want %v", got, err, vips)
	}
	// Cross-check with ip: label and flags as documented.
	out := ns.IP(t, "-o", "addr", "show", "dev", "lo")
	for _, want := range []string{
		"inet 192.0.2.10/32 scope global noprefixroute lo:lbctl",
		"inet 192.0.2.11/32 scope global noprefixroute lo:lbctl",
		"inet6 2001:db8::10/128 scope global nodad noprefixroute",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ip addr lacks %q:\n%s", want, out)
		}
	}
	// Idempotent.
	for _, p := range vips {
		if err := k.AddVIP(p); err != nil {
			t.Fatalf("second AddVIP(%s): %v", p, err)
		}
	}
	if again := ns.IP(t, "-o", "addr", "show", "dev", "lo"); again != out {
		t.Fatalf("second AddVIP changed addresses:\n%s\n---\n%s", out, again)
	}
	// Foreign addresses are refused and left alone.
	for _, p := range pfx("192.0.2.50/32", "2001:db8::50/128") {
		if err := k.AddVIP(p); !errors.Is(err, ErrForeign) {
			t.Errorf("AddVIP(%s) = %v, want ErrForeign", p, err)
		}
		if err := k.RemoveVIP(p); !errors.Is(err, ErrForeign) {
			t.Errorf("RemoveVIP(%s) = %v, want ErrForeign", p, err)
		}
	}
	if err := k.AddVIP(netip.MustParsePrefix("192.0.2.0/24")); !errors.Is(err, ErrNotHostPrefix) {
		t.Errorf("AddVIP(/24) = %v", err)
	}
	// The VIPs are local addresses: a listener binds.
	if err := ns.Do(func() error {
		for _, a := range []string{"192.0.2.10:0", "[2001:db8::10]:0"} {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				return err
			}
			ln.Close()
		}
		return nil
	}); err != nil {
		t.Fatalf("bind to VIP: %v", err)
	}
	// The operations to the desired state remove what is no longer
	// desired and keep foreign addresses.
	if done := syncTo(t, k, netstate.State{VIPs: pfx("192.0.2.11/32")}); len(done) != 2 {
		t.Fatalf("ops = %v, want two removals", done)
	}
	if got, _ := k.ListVIPs(); !reflect.DeepEqual(got, pfx("192.0.2.11/32")) {
		t.Fatalf("after the operations: %v", got)
	}
	if err := k.RemoveVIP(netip.MustParsePrefix("192.0.2.10/32")); err != nil {
		t.Fatalf("RemoveVIP of an absent VIP: %v", err)
	}
	out = ns.IP(t, "-o", "addr", "show", "dev", "lo")
	if strings.Contains(out, "192.0.2.10/") || strings.Contains(out, "2001:db8::10/") ||
		!strings.Contains(out, "192.0.2.50/32") || !strings.Contains(out, "2001:db8::50/128") {
		t.Fatalf("after removals:\n%s", out)
	}
	if hostAfter := hostLo(t); hostAfter != hostBefore {
		t.Fatalf("host lo changed:\n%s\n---\n%s", hostBefore, hostAfter)
	}
}

// TestKernelVIPv6NoDAD: on an interface that does duplicate address
// detection, a VIP is usable immediately (IFA_F_NODAD), while an address
// added without it is still tentative and cannot be bound.
func TestKernelVIPv6NoDAD(t *testing.T) {
	a := netnstest.New(t, "nl-dad-a")
	b := netnstest.New(t, "nl-dad-b")
	l := netnstest.Veth(t, a, "", b, "")
	a.Exec(t, "sysctl", "-q", "-w", "net.ipv6.conf."+l.A+".accept_dad=1", "net.ipv6.conf."+l.A+".dad_transmits=3")
	k := kernelIn(t, a, WithInterface(l.A))
	if k.Label() != l.A+":lb" {
		t.Fatalf("label for %s: %q", l.A, k.Label())
	}
	if err := k.AddVIP(netip.MustParsePrefix("2001:db8::10/128")); err != nil {
		t.Fatal(err)
	}
	if err := k.AddVIP(netip.MustParsePrefix("192.0.2.10/32")); err != nil {
		t.Fatal(err)
	}
	// The reference: same kind of address, DAD on.
	a.IP(t, "addr", "add", "2001:db8::99/128", "dev", l.A)
	bind := func(addr string) error {
		return a.Do(func() error {
			ln, err := net.Listen("tcp", addr)
			if err == nil {
				ln.Close()
			}
			return err
		})
	}
	if err := bind("[2001:db8::10]:0"); err != nil {
		t.Fatalf("VIP not usable at once: %v\n%s", err, a.IP(t, "-6", "addr", "show", "dev", l.A))
	}
	// DAD takes 3 s here; the reference is still tentative.
	if err := bind("[2001:db8::99]:0"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("reference address without NODAD: bind = %v, want EADDRNOTAVAIL (tentative)", err)
	}
	out := a.IP(t, "-o", "addr", "show", "dev", l.A)
	if !strings.Contains(out, "2001:db8::10/128 scope global nodad noprefixroute") || !strings.Contains(out, "192.0.2.10/32 scope global noprefixroute "+l.A+":lb") {
		t.Fatalf("addresses:\n%s", out)
	}
	if got, _ := k.ListVIPs(); !reflect.DeepEqual(got, pfx("192.0.2.10/32", "2001:db8::10/128")) {
		t.Fatalf("ListVIPs = %v", got)
	}
}

// TestKernelTProxy: the routing objects match what the documented ip
// commands make (compared in a second namespace), are idempotent, and are
// recognised when ip made them.
func TestKernelTProxy(t *testing.T) {
	ns := netnstest.New(t, "nl-tproxy")
	ref := netnstest.New(t, "nl-tproxy-ref")
	k := kernelIn(t, ns)
	baseRules := ns.IP(t, "-4", "rule", "show") + ns.IP(t, "-6", "rule", "show")
	if p, err := k.TProxy(); err != nil || p.Any() {
		t.Fatalf("fresh namespace: %+v, %v", p, err)
	}
	if err := k.EnsureTProxy(true); err != nil {
		t.Fatal(err)
	}
	if p, err := k.TProxy(); err != nil || !p.All() {
		t.Fatalf("after EnsureTProxy(true): %+v, %v", p, err)
	}
	ref.IP(t, "-4", "rule", "add", "fwmark", "0x1", "lookup", "100", "priority", "100")
	ref.IP(t, "-6", "rule", "add", "fwmark", "0x1", "lookup", "100", "priority", "100")
	ref.IP(t, "-4", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")
	ref.IP(t, "-6", "route", "add", "local", "::/0", "dev", "lo", "table", "100")
	show := func(n *netnstest.NS) string {
		return n.IP(t, "-4", "rule", "show") + n.IP(t, "-6", "rule", "show") +
			n.IP(t, "-4", "route", "show", "table", "100") + n.IP(t, "-6", "route", "show", "table", "100")
	}
	got, want := show(ns), show(ref)
	if got != want {
		t.Fatalf("EnsureTProxy differs from the ip commands:\n%s\n--- ip:\n%s", got, want)
	}
	if !strings.Contains(got, "100:\tfrom all fwmark 0x1 lookup 100") || !strings.Contains(got, "local default dev lo") {
		t.Fatalf("unexpected listing:\n%s", got)
	}
	// Idempotent: no duplicate rules.
	if err := k.EnsureTProxy(true); err != nil {
		t.Fatal(err)
	}
	if again := show(ns); again != got {
		t.Fatalf("second EnsureTProxy(true) changed:\n%s", again)
	}
	// The ip-made objects are recognised.
	if p, err := kernelIn(t, ref).TProxy(); err != nil || !p.All() {
		t.Fatalf("ip-made routing read as %+v, %v", p, err)
	}
	// Half-removed routing is seen as partial and repaired.
	ns.IP(t, "-6", "rule", "del", "fwmark", "0x1", "lookup", "100", "priority", "100")
	s, err := Read(k)
	if err != nil || s.TProxy || !s.TProxyPartial {
		t.Fatalf("after deleting the v6 rule: %+v, %v", s, err)
	}
	if ops := syncTo(t, k, netstate.State{TProxy: true}); len(ops) != 1 || ops[0].Kind != netstate.TProxyOn {
		t.Fatalf("repair: %v", ops)
	}
	if again := show(ns); again != got {
		t.Fatalf("after repair:\n%s", again)
	}
	// Off removes all four, twice is fine, other rules stay.
	for range 2 {
		if err := k.EnsureTProxy(false); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ := k.TProxy(); p.Any() {
		t.Fatalf("after EnsureTProxy(false): %+v", p)
	}
	if after := ns.IP(t, "-4", "rule", "show") + ns.IP(t, "-6", "rule", "show"); after != baseRules {
		t.Fatalf("rules after off:\n%s\nwant\n%s", after, baseRules)
	}
	if tbl := ns.IP(t, "-4", "route", "show", "table", "100") + ns.IP(t, "-6", "route", "show", "table", "100"); tbl != "" {
		t.Fatalf("table 100 after off:\n%s", tbl)
	}
}
