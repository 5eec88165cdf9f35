package nftspec

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

// fixture is a firewall with every kind of entry, in canonical form.
func fixture() model.Firewall {
	ap := func(a string, p int) model.AddrPort { return model.AddrPort{Addr: netip.MustParseAddr(a), Port: p} }
	return model.Firewall{
		VIPs4: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")}, VIPs6: []netip.Addr{netip.MustParseAddr("2001:db8::10")},
		Accept4:     []model.AddrPort{ap("192.0.2.10", 80), ap("192.0.2.10", 443), ap("192.0.2.11", 443)},
		Accept6:     []model.AddrPort{ap("2001:db8::10", 443)},
		Transparent: true,
		Intercepts: []model.Intercept{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 80, ToAddr: netip.MustParseAddr("192.0.2.10"), ToPort: 8080},
			{Prefix: netip.MustParsePrefix("172.16.0.0/12"), Port: 443, ToPort: 8443}},
		Handoff: &model.Handoff{Port: model.HandoffPort, MSS: model.HandoffMSS,
			Peers4: []netip.Addr{netip.MustParseAddr("198.51.100.12")}, Backends4: []model.AddrPort{ap("203.0.113.61", 3200)}},
	}
}

func TestDiff(t *testing.T) {
	want := fixture()
	if d := Diff(want, want); len(d) != 0 {
		t.Fatalf("self diff: %v", d)
	}
	// Order, duplicates and address spelling do not matter.
	same := fixture()
	same.VIPs4 = []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.10")}
	same.VIPs6 = []netip.Addr{netip.MustParseAddr("2001:DB8:0::10")}
	if d := Diff(want, same); len(d) != 0 {
		t.Fatalf("diff of equivalent firewalls: %v", d)
	}
	got := fixture()
	got.VIPs4 = got.VIPs4[:1]
	got.Accept6 = append(got.Accept6, model.AddrPort{Addr: netip.MustParseAddr("2001:db8::10"), Port: 80})
	got.Transparent = false
	got.Intercepts = got.Intercepts[1:]
	wantLines := []string{
		"intercept: missing 10.0.0.0/8 . 80 -> 192.0.2.10:8080",
		"svc6: unexpected 2001:db8::10 . 80",
		"transparent: want true, got false",
		"vip4: missing 192.0.2.11",
	}
	if d := Diff(want, got); !reflect.DeepEqual(d, wantLines) {
		t.Fatalf("Diff =\n%s\nwant\n%s", strings.Join(d, "\n"), strings.Join(wantLines, "\n"))
	}
}

func TestCanonical(t *testing.T) {
	in := fixture()
	in.VIPs4 = []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")}
	in.Accept4 = []model.AddrPort{{Addr: netip.MustParseAddr("192.0.2.11"), Port: 443}, {Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}, {Addr: netip.MustParseAddr("192.0.2.10"), Port: 443}}
	got, err := Canonical(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fixture()) {
		t.Fatalf("Canonical =\n%+v\nwant\n%+v", got, fixture())
	}
	if got, _ := Canonical(model.Firewall{VIPs4: []netip.Addr{}}); got.VIPs4 != nil {
		t.Fatal("empty list not nil")
	}
}
