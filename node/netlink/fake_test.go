package netlink

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/lbctl/lbctl/node/netlink/netstate"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// syncTo reads c, computes the operations to desired and runs them.
func syncTo(t *testing.T, c Conn, desired netstate.State) []netstate.Op {
	t.Helper()
	observed, err := Read(c)
	if err != nil {
		t.Fatal(err)
	}
	ops := netstate.Ops(desired, observed)
	for _, op := range ops {
		switch op.Kind {
		case netstate.TProxyOn:
			err = c.EnsureTProxy(true)
		case netstate.TProxyOff:
			err = c.EnsureTProxy(false)
		case netstate.AddVIP:
			err = c.AddVIP(op.VIP)
		case netstate.RemoveVIP:
			err = c.RemoveVIP(op.VIP)
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	return ops
}

func seed(t *testing.T, f *Fake, s netstate.State) {
	t.Helper()
	for _, p := range s.VIPs {
		if err := f.AddVIP(p); err != nil {
			t.Fatal(err)
		}
	}
	switch {
	case s.TProxy:
		f.SetTProxyParts(TProxyParts{true, true, true, true})
	case s.TProxyPartial:
		f.SetTProxyParts(TProxyParts{Rule4: true})
	}
}

// TestFakeReachesDesired runs netstate.Ops on the Fake: afterwards the
// states agree and a second computation is empty.
func TestFakeReachesDesired(t *testing.T) {
	for _, tt := range []struct{ desired, observed netstate.State }{
		{netstate.State{VIPs: pfx("2001:db8::10/128", "192.0.2.10/32"), TProxy: true}, netstate.State{}},
		{netstate.State{VIPs: pfx("192.0.2.11/32")}, netstate.State{VIPs: pfx("192.0.2.10/32")}},
		{netstate.State{}, netstate.State{VIPs: pfx("192.0.2.10/32"), TProxy: true}},
		{netstate.State{TProxy: true}, netstate.State{TProxyPartial: true}},
		{netstate.State{}, netstate.State{TProxyPartial: true}},
	} {
		var f Fake
		seed(t, &f, tt.observed)
		syncTo(t, &f, tt.desired)
		after, _ := Read(&f)
		if d := netstate.Diff(tt.desired, after); len(d) > 0 {
			t.Errorf("%+v: after the operations: %v", tt.desired, d)
		}
		if ops := netstate.Ops(tt.desired, after); len(ops) > 0 {
			t.Errorf("%+v: second computation not empty: %v", tt.desired, ops)
		}
	}
}

func TestFakeRefuses(t *testing.T) {
	f := Fake{Foreign: pfx("192.0.2.50/32")}
	for _, p := range []string{"192.0.2.0/24", "2001:db8::/64"} {
		if err := f.AddVIP(netip.MustParsePrefix(p)); !errors.Is(err, ErrNotHostPrefix) {
			t.Errorf("AddVIP(%s) = %v, want ErrNotHostPrefix", p, err)
		}
	}
	if err := f.AddVIP(netip.MustParsePrefix("192.0.2.50/32")); !errors.Is(err, ErrForeign) {
		t.Errorf("AddVIP(foreign) = %v", err)
	}
	if err := f.RemoveVIP(netip.MustParsePrefix("192.0.2.50/32")); !errors.Is(err, ErrForeign) {
		t.Errorf("RemoveVIP(foreign) = %v", err)
	}
	if err := f.RemoveVIP(netip.MustParsePrefix("192.0.2.51/32")); err != nil {
		t.Errorf("RemoveVIP(absent) = %v", err)
	}
	if err := f.EnsureTProxy(true); err != nil {
		t.Fatal(err)
	}
	want := "rule4 fwmark 0x1 lookup 100 priority 100\nrule6 fwmark 0x1 lookup 100 priority 100\n" +
		"route4 local 0.0.0.0/0 dev lo table 100\nroute6 local ::/0 dev lo table 100\n"
	if got := f.String(); got != want {
		t.Errorf("String:\n%s", got)
	}
}
