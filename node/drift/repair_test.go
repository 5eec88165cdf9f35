package drift

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/netlink/netstate"
	"github.com/lbctl/lbctl/node/nft/nftspec"
	"github.com/lbctl/lbctl/node/plan"
)

var (
	web   = netip.MustParseAddr("192.0.2.10")
	mail  = netip.MustParseAddr("192.0.2.11")
	mail6 = netip.MustParseAddr("2001:db8::11")
	stray = netip.MustParseAddr("192.0.2.99")
)

// twoVIPs is a release with a plain VIP and a transparent dual-stack one.
func twoVIPs() *plan.State {
	return &plan.State{Serial: 7, BirdConf: []byte("bird 7\n"),
		Firewall: model.Firewall{VIPs4: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")}, VIPs6: []netip.Addr{netip.MustParseAddr("2001:db8::11")},
			Accept4: []model.AddrPort{{Addr: netip.MustParseAddr("192.0.2.10"), Port: 443}, {Addr: netip.MustParseAddr("192.0.2.11"), Port: 25}},
			Accept6: []model.AddrPort{{Addr: netip.MustParseAddr("2001:db8::11"), Port: 25}}, Transparent: true},
		VIPs: []plan.VIP{
			{Name: "192.0.2.10", Addresses: []netip.Addr{web},
				Files: []plan.File{{Path: "haproxy.cfg", Data: []byte("web\n")}}},
			{Name: "192.0.2.11", Addresses: []netip.Addr{mail, mail6}, Transparent: true,
				Files: []plan.File{{Path: "haproxy.cfg", Data: []byte("mail\n")}, {Path: "tls/mail.pem", Data: []byte("pem\n")}}},
		}}
}

// matching is the observation of a node that runs s exactly.
func matching(s *plan.State) *Observed {
	o := &Observed{Firewall: s.Firewall, FirewallExists: true, Addresses: netstate.State{TProxy: s.TProxy()},
		Units: map[string]Unit{}, Files: map[string]map[string][]byte{}, DropIns: map[string]bool{},
		BirdConf: s.BirdConf, Announced: []netip.Prefix{}}
	for i, v := range s.VIPs {
		o.Units[v.Name] = Unit{Active: true, MainPID: uint32(100 + i), State: "active/running"}
		o.Files[v.Name] = map[string][]byte{}
		for _, f := range v.Files {
			o.Files[v.Name][f.Path] = f.Data
		}
		if v.Transparent {
			o.DropIns[v.Name] = true
		}
		for _, a := range v.Addresses {
			p := netstate.HostPrefix(a)
			o.Addresses.VIPs = append(o.Addresses.VIPs, p)
			o.Announced = append(o.Announced, p)
			o.MayAnnounce = append(o.MayAnnounce, p)
		}
	}
	return o
}

// fakeOf is an apply.Fake holding the observed node. The fake cannot hold
// foreign rules: a table Read refused is an empty one there.
func fakeOf(t *testing.T, o *Observed) *apply.Fake {
	t.Helper()
	ctx := context.Background()
	f := apply.NewFake()
	for _, name := range slices.Sorted(maps.Keys(o.Files)) {
		v := observedVIP(plan.VIP{Name: name}, o.Files[name], o.DropIns[name])
		if err := f.WriteVIP(ctx, &v); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(o.Units)) {
		if o.Units[name].Active {
			f.Units[name] = o.Units[name].MainPID
		}
	}
	for _, p := range o.Addresses.VIPs {
		f.Addrs[p.Addr()] = true
	}
	if o.FirewallExists && o.FirewallErr == nil {
		f.FW = o.Firewall.Canonical()
	}
	f.TProxyOn = o.Addresses.TProxy
	f.BirdConf = string(o.BirdConf)
	for _, p := range o.Announced {
		f.Announced = append(f.Announced, p.Addr())
	}
	slices.SortFunc(f.Announced, netip.Addr.Compare)
	f.Calls, f.CallLog = 0, nil
	return f
}

func steps(p *plan.Plan) []string {
	out := []string{}
	for _, s := range p.Steps {
		out = append(out, s.Do.String())
	}
	return out
}

func TestRepairNoDrift(t *testing.T) {
	for _, s := range []*plan.State{release(), twoVIPs(), {Serial: 1}} {
		if d := Compare(s, matching(s)); len(d) != 0 {
			t.Fatalf("release %d: drift %v on a matching node", s.Serial, d)
		}
		if p := Repair(s, matching(s)); !p.Empty() {
			t.Errorf("release %d: no drift, but the repair plans %q", s.Serial, steps(p))
		}
	}
	// BIRD not asked (Announced nil) is no drift either.
	o := matching(twoVIPs())
	o.Announced = nil
	if p := Repair(twoVIPs(), o); !p.Empty() {
		t.Errorf("BIRD not asked: repair plans %q", steps(p))
	}
}

// TestRepair runs each repair on a fake node holding the drifted state:
// the plan is the expected one, applying it leaves exactly the node of the
// release (VIPs that did not drift keep their process and are not
// written), and when a step fails the undos bring back the drifted node
// (as far as the plan says it can).
func TestRepair(t *testing.T) {
	tests := []struct {
		name string
		rel  func(s *plan.State) // changes the release (and the matching node)
		mod  func(o *Observed)   // the drift
		want []string
		// inexact: an undo is missing by design (see Repair).
		inexact bool
	}{
		{name: "table missing", mod: func(o *Observed) { o.FirewallExists, o.Firewall = false, model.Firewall{} },
			want: []string{"firewall (2+1 listeners)"}, inexact: true},
		{name: "rule added by hand", mod: func(o *Observed) {
			o.FirewallErr = fmt.Errorf("nft: table inet lbctl: %w: unexpected rule in chain input", nftspec.ErrDrift)
		}, want: []string{"firewall (2+1 listeners)"}, inexact: true},
		{name: "listener added by hand", mod: func(o *Observed) {
			o.Firewall.Accept4 = append(o.Firewall.Accept4, model.AddrPort{Addr: netip.MustParseAddr("192.0.2.10"), Port: 22})
		}, want: []string{"firewall (2+1 listeners)"}},
		{name: "element deleted by hand", mod: func(o *Observed) { o.Firewall.VIPs6 = nil },
			want: []string{"firewall (2+1 listeners)"}},
		{name: "address deleted", mod: func(o *Observed) { o.Addresses.VIPs = o.Addresses.VIPs[1:] },
			want: []string{"add-addresses 192.0.2.10"}},
		{name: "address added by hand", mod: func(o *Observed) {
			o.Addresses.VIPs = append(o.Addresses.VIPs, netip.MustParsePrefix("198.51.100.7/32"))
		}, want: []string{"remove-addresses 198.51.100.7"}},
		{name: "tproxy routing gone", mod: func(o *Observed) { o.Addresses.TProxy = false },
			want: []string{"tproxy on"}},
		{name: "tproxy routing partly gone", mod: func(o *Observed) { o.Addresses.TProxy, o.Addresses.TProxyPartial = false, true },
			want: []string{"tproxy on"}},
		{name: "tproxy routing left on", rel: func(s *plan.State) {
			s.VIPs[1].Transparent, s.Firewall.Transparent = false, false
		}, mod: func(o *Observed) { o.Addresses.TProxy = true }, want: []string{"tproxy off"}},
		{name: "config edited", mod: func(o *Observed) { o.Files["192.0.2.10"]["haproxy.cfg"] = []byte("web\n# edited by hand\n") },
			want: []string{"reload-vip 192.0.2.10", "health-gate [192.0.2.10]"}},
		{name: "config file deleted", mod: func(o *Observed) { delete(o.Files["192.0.2.11"], "tls/mail.pem") },
			want: []string{"reload-vip 192.0.2.11", "health-gate [192.0.2.11]"}},
		{name: "file added by hand", mod: func(o *Observed) { o.Files["192.0.2.10"]["extra.cfg"] = []byte("x\n") },
			want: []string{"reload-vip 192.0.2.10", "health-gate [192.0.2.10]"}},
		{name: "drop-in deleted", mod: func(o *Observed) { delete(o.DropIns, "192.0.2.11") },
			want: []string{"vip-files write [192.0.2.11], daemon-reload", "restart-unit 192.0.2.11", "health-gate [192.0.2.11]"}},
		{name: "drop-in added by hand", mod: func(o *Observed) { o.DropIns["192.0.2.10"] = true },
			want: []string{"vip-files write [192.0.2.10], daemon-reload", "restart-unit 192.0.2.10", "health-gate [192.0.2.10]"}},
		{name: "unit stopped", mod: func(o *Observed) { o.Units["192.0.2.10"] = Unit{State: "inactive/dead"} },
			want: []string{"vip-files write [192.0.2.10], daemon-reload", "start-unit 192.0.2.10", "health-gate [192.0.2.10]"}},
		{name: "unit stopped and collected", mod: func(o *Observed) { delete(o.Units, "192.0.2.10") },
			want: []string{"vip-files write [192.0.2.10], daemon-reload", "start-unit 192.0.2.10", "health-gate [192.0.2.10]"}},
		{name: "unit failed, config edited", mod: func(o *Observed) {
			o.Units["192.0.2.11"] = Unit{State: "failed/failed"}
			o.Files["192.0.2.11"]["haproxy.cfg"] = []byte("broken\n")
		}, want: []string{"vip-files write [192.0.2.11], daemon-reload", "start-unit 192.0.2.11", "health-gate [192.0.2.11]"}},
		{name: "unit and config directory gone", mod: func(o *Observed) {
			delete(o.Units, "192.0.2.11")
			delete(o.Files, "192.0.2.11")
			delete(o.DropIns, "192.0.2.11")
		}, want: []string{"vip-files write [192.0.2.11], daemon-reload", "start-unit 192.0.2.11", "health-gate [192.0.2.11]"}},
		{name: "unit not in the release", mod: func(o *Observed) {
			o.Units["192.0.2.99"] = Unit{Active: true, MainPID: 999}
			o.Files["192.0.2.99"] = map[string][]byte{"haproxy.cfg": []byte("old\n")}
			o.Addresses.VIPs = append(o.Addresses.VIPs, netstate.HostPrefix(stray))
		}, want: []string{"stop-unit 192.0.2.99", "vip-files remove [192.0.2.99], daemon-reload", "remove-addresses 192.0.2.99"}},
		{name: "config directory left", mod: func(o *Observed) {
			o.Files["192.0.2.99"] = map[string][]byte{"haproxy.cfg": []byte("old\n")}
		}, want: []string{"vip-files remove [192.0.2.99], daemon-reload"}},
		{name: "bird.conf edited", mod: func(o *Observed) { o.BirdConf = []byte("bird 7\n# edited\n") },
			want: []string{"bird", "announce [192.0.2.10 192.0.2.11]"}},
		{name: "route announced by hand", mod: func(o *Observed) {
			o.Announced = append(o.Announced, netip.MustParsePrefix("198.51.100.0/24"))
		}, want: []string{"announce [192.0.2.10 192.0.2.11]"}, inexact: true},
		{name: "all at once", mod: func(o *Observed) {
			o.FirewallErr = fmt.Errorf("%w: unexpected chain extra", nftspec.ErrDrift)
			o.Addresses.TProxy = false
			o.Addresses.VIPs = append(o.Addresses.VIPs[1:], netstate.HostPrefix(stray))
			o.Units["192.0.2.99"] = Unit{Active: true, MainPID: 999}
			o.Files["192.0.2.99"] = map[string][]byte{"haproxy.cfg": []byte("old\n")}
			o.Files["192.0.2.10"]["haproxy.cfg"] = []byte("edited\n")
			delete(o.DropIns, "192.0.2.11")
			o.BirdConf = nil
		}, want: []string{"firewall (2+1 listeners)", "tproxy on", "add-addresses 192.0.2.10",
			"vip-files write [192.0.2.11], daemon-reload", "reload-vip 192.0.2.10", "restart-unit 192.0.2.11",
			"health-gate [192.0.2.10 192.0.2.11]", "bird", "announce [192.0.2.10 192.0.2.11]",
			"stop-unit 192.0.2.99", "vip-files remove [192.0.2.99], daemon-reload", "remove-addresses 192.0.2.99"}, inexact: true},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			want := twoVIPs()
			if tt.rel != nil {
				tt.rel(want)
			}
			clean := matching(want)
			got := matching(want)
			tt.mod(got)
			if d := Compare(want, got); len(d) == 0 {
				t.Fatal("Compare reports no drift: the case tests nothing")
			}
			p := Repair(want, got)
			if s := steps(p); !slices.Equal(s, tt.want) {
				t.Fatalf("steps\n  %q\nwant\n  %q", s, tt.want)
			}
			gatedAfterWrite(t, p)
			// Applied, the node is the release's.
			f := fakeOf(t, got)
			if err := apply.Apply(ctx, f, p.Steps); err != nil {
				t.Fatalf("apply: %v\ncalls %v", err, f.CallLog)
			}
			if g, w := f.StateWithoutPIDs(), fakeOf(t, clean).StateWithoutPIDs(); g != w {
				t.Fatalf("after the repair:\n%s\nwant the release's node:\n%s", g, w)
			}
			// Nothing else was touched.
			touched := slices.Concat(p.Changed, p.Removed)
			for _, c := range f.CallLog {
				if _, vip, ok := strings.Cut(c, " "); ok && !slices.Contains(touched, vip) {
					t.Errorf("%s touched, but only %v drifted", c, touched)
				}
			}
			for _, n := range p.Unchanged {
				if f.Units[n] != got.Units[n].MainPID {
					t.Errorf("vip %s: main PID %d, was %d", n, f.Units[n], got.Units[n].MainPID)
				}
			}
			// A failure after the last step undoes every step.
			failing := fakeOf(t, got)
			failing.FailAt = f.Calls + 1
			err := apply.Apply(ctx, failing, append(slices.Clone(p.Steps), plan.Step{Do: plan.Op{Kind: plan.Wait}}))
			if !errors.Is(err, apply.ErrRolledBack) {
				t.Fatalf("failure after the repair: %v", err)
			}
			g, w := failing.StateWithoutPIDs(), fakeOf(t, got).StateWithoutPIDs()
			if tt.inexact != (g != w) {
				t.Errorf("undo restores the observed node exactly: %v, want %v\nafter the undo:\n%s\nobserved:\n%s", g == w, !tt.inexact, g, w)
			}
		})
	}
}

// gatedAfterWrite checks that every VIP a health gate waits for was
// written by an earlier step: the host gates only VIPs written in the same
// apply (the fake does not check it).
func gatedAfterWrite(t *testing.T, p *plan.Plan) {
	t.Helper()
	written := map[string]bool{}
	for _, s := range p.Steps {
		switch s.Do.Kind {
		case plan.VIPFiles:
			for _, v := range s.Do.VIPs {
				written[v.Name] = true
			}
		case plan.StartVIP, plan.ReloadVIP, plan.RestartVIP:
			written[s.Do.VIP.Name] = true
		case plan.HealthGate:
			for _, n := range s.Do.Names {
				if !written[n] {
					t.Errorf("%s: vip %s was not written before", s.Do, n)
				}
			}
		}
	}
}

// TestRepairUndo checks the undos the fake cannot tell apart: a table
// with foreign rules gets back what Read could list of it, an unreadable
// one nothing.
func TestRepairUndo(t *testing.T) {
	want := twoVIPs()
	got := matching(want)
	got.Firewall.Accept4 = got.Firewall.Accept4[:1]
	got.FirewallErr = fmt.Errorf("%w: unexpected rule", nftspec.ErrDrift)
	p := Repair(want, got)
	if len(p.Steps) != 1 {
		t.Fatalf("steps %q", steps(p))
	}
	if u := p.Steps[0].Undo; u == nil || u.Kind != plan.Firewall || len(u.Firewall.Accept4) != 1 {
		t.Errorf("firewall undo %+v, want the table as read", u)
	}
	got.FirewallErr = errors.New("nft: read table inet lbctl: permission denied")
	if u := Repair(want, got).Steps[0].Undo; u != nil {
		t.Errorf("unreadable table: undo %+v, want none", u)
	}
}
