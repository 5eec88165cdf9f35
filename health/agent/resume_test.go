package agent

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// previousAnnouncer is a fakeAnnouncer whose include files held prev when
// the agent started (an agent restarted, or killed, while announcing).
type previousAnnouncer struct {
	fakeAnnouncer
	prev []netip.Prefix
}

func (p *previousAnnouncer) Previous() []netip.Prefix { return p.prev }

// TestRestartKeepsAnnouncedVIPs: an agent that starts while the node
// announces a VIP keeps announcing it when its first evaluation passes
// (its first publish has it), instead of withdrawing it until Rise
// evaluations passed; a VIP that was not announced, one announced but
// failing, and a VIP new in a later reload still need Rise.
func TestRestartKeepsAnnouncedVIPs(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	ln, addr := serve(t)
	defer ln.Close()
	lnDead, dead := serve(t)
	lnDead.Close() // nothing listens: its probe fails
	mk := func(name, ip string, probe netip.AddrPort) health.VIP {
		return health.VIP{Name: name, Addresses: []netip.Addr{netip.MustParseAddr(ip)},
			Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: probe}}}
	}
	kept, fresh, failing := mk("kept", "192.0.2.10", addr), mk("fresh", "192.0.2.11", addr), mk("failing", "192.0.2.12", dead)
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{kept, fresh, failing}})
	store.Stage(&release.Release{Serial: 1, State: &plan.State{}})
	store.Commit(1)
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	ann := &previousAnnouncer{fakeAnnouncer: fakeAnnouncer{ch: make(chan []netip.Prefix, 100)},
		prev: []netip.Prefix{p("192.0.2.10/32"), p("192.0.2.12/32")}}
	// Evaluations an hour apart: only the first one of each VIP runs.
	a := New(Config{Store: store, Announcer: ann, Interval: time.Hour, FastInterval: time.Hour, Rise: 3, Fall: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	go a.Run(ctx, func() { close(ready) })
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready after 30s")
	}
	if got, want := ann.last(), []netip.Prefix{p("192.0.2.10/32")}; !slices.Equal(got, want) {
		t.Fatalf("first publish after the restart %v, want %v (kept announced; fresh and failing wait for rise)", got, want)
	}
	for _, v := range a.Status().VIPs {
		if want := v.Name == "kept"; v.Healthy != want || v.Transitions != 0 {
			t.Errorf("%s: healthy %v transitions %d, want healthy %v without a transition", v.Name, v.Healthy, v.Transitions, want)
		}
	}
	// A VIP that a later reload adds is new even if its address was
	// announced at the start.
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{kept, fresh, mk("later", "192.0.2.12", addr)}})
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := ann.last(), []netip.Prefix{p("192.0.2.10/32")}; !slices.Equal(got, want) {
		t.Errorf("after a reload adding a VIP: %v, want %v", got, want)
	}
}
