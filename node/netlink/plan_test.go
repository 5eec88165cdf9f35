package netlink

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name              string
		desired, observed State
		want              string
	}{
		{"nothing", State{}, State{}, ""},
		{"same", State{VIPs: pfx("192.0.2.10/32"), TProxy: true}, State{VIPs: pfx("192.0.2.10/32"), TProxy: true}, ""},
		{"fresh transparent node",
			State{VIPs: pfx("2001:db8::10/128", "192.0.2.10/32"), TProxy: true}, State{},
			"tproxy-on, add-vip 192.0.2.10/32, add-vip 2001:db8::10/128"},
		{"replace: add before remove",
			State{VIPs: pfx("192.0.2.11/32")}, State{VIPs: pfx("192.0.2.10/32")},
			"add-vip 192.0.2.11/32, remove-vip 192.0.2.10/32"},
		{"tproxy off after removals",
			State{}, State{VIPs: pfx("192.0.2.10/32"), TProxy: true},
			"remove-vip 192.0.2.10/32, tproxy-off"},
		{"partial tproxy completed", State{TProxy: true}, State{TProxyPartial: true}, "tproxy-on"},
		{"partial tproxy cleaned", State{}, State{TProxyPartial: true}, "tproxy-off"},
		{"duplicates", State{VIPs: pfx("192.0.2.10/32", "192.0.2.10/32")}, State{}, "add-vip 192.0.2.10/32"},
	}
	for _, tt := range tests {
		var got []string
		for _, op := range Plan(tt.desired, tt.observed) {
			got = append(got, op.String())
		}
		if s := strings.Join(got, ", "); s != tt.want {
			t.Errorf("%s: Plan = %q, want %q", tt.name, s, tt.want)
		}
		// After the plan, the states agree.
		var f Fake
		seed(t, &f, tt.observed)
		if _, err := Sync(&f, tt.desired); err != nil {
			t.Errorf("%s: Sync: %v", tt.name, err)
		}
		after, _ := Read(&f)
		if d := Diff(tt.desired, after); len(d) > 0 {
			t.Errorf("%s: after Sync: %v", tt.name, d)
		}
		if ops := Plan(tt.desired, after); len(ops) > 0 {
			t.Errorf("%s: second plan not empty: %v", tt.name, ops)
		}
	}
}

func seed(t *testing.T, f *Fake, s State) {
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

func TestDiff(t *testing.T) {
	got := Diff(State{VIPs: pfx("192.0.2.10/32", "2001:db8::10/128"), TProxy: true},
		State{VIPs: pfx("192.0.2.11/32", "2001:db8::10/128"), TProxyPartial: true})
	want := []string{"tproxy: want on, got partial", "vip: missing 192.0.2.10/32", "vip: unexpected 192.0.2.11/32"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Diff = %q, want %q", got, want)
	}
	if d := Diff(State{TProxyPartial: true}, State{}); len(d) > 0 {
		t.Fatalf("TProxyPartial in desired state is not ignored: %v", d)
	}
}

func TestSyncPartialFailure(t *testing.T) {
	var f Fake
	seed(t, &f, State{VIPs: pfx("192.0.2.1/32")})
	boom := errors.New("boom")
	f.Fail = func(op Op) error {
		if op.Kind == AddVIP && op.VIP == netip.MustParsePrefix("192.0.2.3/32") {
			return boom
		}
		return nil
	}
	done, err := Sync(&f, State{VIPs: pfx("192.0.2.2/32", "192.0.2.3/32")})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "add-vip 192.0.2.3/32") {
		t.Fatalf("Sync error = %v", err)
	}
	var names []string
	for _, op := range done {
		names = append(names, op.String())
	}
	// Independent operations still ran; the result says what was reached.
	if got := strings.Join(names, ", "); got != "add-vip 192.0.2.2/32, remove-vip 192.0.2.1/32" {
		t.Fatalf("done = %s", got)
	}
	if got := f.String(); got != "vip 192.0.2.2/32\n" {
		t.Fatalf("state:\n%s", got)
	}

	// A failed tproxy-on stops the plan: no transparent VIP without routing.
	var g Fake
	g.Fail = func(op Op) error {
		if op.Kind == TProxyOn {
			return boom
		}
		return nil
	}
	done, err = Sync(&g, State{VIPs: pfx("192.0.2.9/32"), TProxy: true})
	if !errors.Is(err, boom) || len(done) != 0 || g.String() != "" {
		t.Fatalf("after failed tproxy-on: done %v, err %v, state %q", done, err, g.String())
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
	if _, err := Sync(&f, State{VIPs: pfx("192.0.2.0/24")}); !errors.Is(err, ErrNotHostPrefix) {
		t.Errorf("Sync with a /24: %v", err)
	}
	if err := f.EnsureTProxy(true); err != nil {
		t.Fatal(err)
	}
	want := "rule4 fwmark 0x1 lookup 100 priority 100\nrule6 fwmark 0x1 lookup 100 priority 100\n" +
		"route4 local 0.0.0.0/0 dev lo table 100\nroute6 local ::/0 dev lo table 100\n"
	if got := f.String(); got != want {
		t.Errorf("String:\n%s", got)
	}
	if HostPrefix(netip.MustParseAddr("::ffff:192.0.2.1")) != netip.MustParsePrefix("192.0.2.1/32") {
		t.Error("HostPrefix does not unmap")
	}
}
