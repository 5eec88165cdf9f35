package netstate

import (
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

func TestOps(t *testing.T) {
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
		for _, op := range Ops(tt.desired, tt.observed) {
			got = append(got, op.String())
		}
		if s := strings.Join(got, ", "); s != tt.want {
			t.Errorf("%s: Ops = %q, want %q", tt.name, s, tt.want)
		}
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

func TestHostPrefix(t *testing.T) {
	if HostPrefix(netip.MustParseAddr("::ffff:192.0.2.1")) != netip.MustParsePrefix("192.0.2.1/32") {
		t.Error("HostPrefix does not unmap")
	}
}
