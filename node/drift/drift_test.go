package drift

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/netlink/netstate"
	"github.com/lbctl/lbctl/node/plan"
)

func release() *plan.State {
	a := netip.MustParseAddr("192.0.2.10")
	return &plan.State{Serial: 4, BirdConf: []byte("bird\n"),
		Firewall: model.Firewall{VIPs4: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, Accept4: []model.AddrPort{{Addr: netip.MustParseAddr("192.0.2.10"), Port: 443}}},
		VIPs: []plan.VIP{{Name: "192.0.2.10", Addresses: []netip.Addr{a},
			Files: []plan.File{{Path: "haproxy.cfg", Data: []byte("cfg\n")}}}}}
}

func clean() *Observed {
	r := release()
	return &Observed{
		Firewall: r.Firewall, FirewallExists: true,
		Addresses: netstate.State{VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}},
		Units:     map[string]Unit{"192.0.2.10": {Active: true, MainPID: 42}},
		Files:     map[string]map[string][]byte{"192.0.2.10": {"haproxy.cfg": []byte("cfg\n")}},
		DropIns:   map[string]bool{}, BirdConf: []byte("bird\n"),
		Announced: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}, MayAnnounce: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")},
	}
}

func TestCompare(t *testing.T) {
	if d := Compare(release(), clean()); len(d) != 0 {
		t.Fatalf("no drift expected: %v", d)
	}
	tests := []struct {
		name string
		mod  func(o *Observed)
		want string
	}{
		{"table gone", func(o *Observed) { o.FirewallExists = false }, "nftables: table inet lbctl missing"},
		{"foreign rule", func(o *Observed) { o.FirewallErr = errors.New("unexpected rule") }, "nftables: unexpected rule"},
		{"listener added by hand", func(o *Observed) {
			o.Firewall.Accept4 = append(o.Firewall.Accept4, model.AddrPort{Addr: netip.MustParseAddr("192.0.2.10"), Port: 22})
		}, "nftables:"},
		{"address removed", func(o *Observed) { o.Addresses.VIPs = nil }, "addresses:"},
		{"tproxy left on", func(o *Observed) { o.Addresses.TProxy = true }, "addresses: tproxy"},
		{"unit stopped", func(o *Observed) { o.Units["192.0.2.10"] = Unit{State: "failed/failed"} }, "unit lb-haproxy@192.0.2.10.service: failed/failed"},
		{"stray unit", func(o *Observed) { o.Units["192.0.2.99"] = Unit{Active: true} }, "unit lb-haproxy@192.0.2.99.service: running but not in release 4"},
		{"config edited", func(o *Observed) { o.Files["192.0.2.10"]["haproxy.cfg"] = []byte("edited\n") }, "vip 192.0.2.10: haproxy.cfg differs from release 4"},
		{"extra file", func(o *Observed) { o.Files["192.0.2.10"]["x.pem"] = nil }, "vip 192.0.2.10: unexpected file x.pem"},
		{"drop-in", func(o *Observed) { o.DropIns["192.0.2.10"] = true }, "transparent drop-in present=true"},
		{"bird.conf", func(o *Observed) { o.BirdConf = nil }, "bird.conf differs"},
		{"foreign route", func(o *Observed) {
			o.Announced = append(o.Announced, netip.MustParsePrefix("198.51.100.0/24"))
		}, "bird: announces 198.51.100.0/24"},
	}
	for _, tt := range tests {
		o := clean()
		tt.mod(o)
		d := Compare(release(), o)
		if len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), tt.want) {
			t.Errorf("%s: drift %q, want %q", tt.name, d, tt.want)
		}
	}
}
