package agent

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// countingBackends is a VIP's show stat: it counts the calls and reports
// up servers in backend "be".
type countingBackends struct {
	calls atomic.Int64
	up    atomic.Int64
}

func (b *countingBackends) UpCount(context.Context, string) (map[string]int, error) {
	b.calls.Add(1)
	return map[string]int{"be": int(b.up.Load())}, nil
}

// countingServer accepts connections (the VIP's TCP probe) and counts them.
func countingServer(t *testing.T) (*atomic.Int64, netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the Close below (cleanups run last first)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	})
	return &n, netip.MustParseAddrPort(ln.Addr().String())
}

// manualAgent commits vips as the announceable set of release 1 and returns
// an agent over them, loaded but not Run: each VIP's goroutine has made its
// first evaluation, and the test drives the next ones by hand (cfg's
// intervals keep the goroutines' own far away). It stops at the test's end.
func manualAgent(t *testing.T, cfg Config, vips ...health.VIP) (*Agent, *release.Store, context.Context) {
	t.Helper()
	store, _ := release.Open(t.TempDir())
	store.WriteAnnounceable(health.Announceable{VIPs: vips})
	store.Stage(&release.Release{Serial: 1, State: &plan.State{}})
	store.Commit(1)
	cfg.Store = store
	if cfg.Announcer == nil {
		cfg.Announcer = &fakeAnnouncer{}
	}
	a := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); a.wg.Wait() })
	a.runCtx = ctx
	if _, err := a.load(); err != nil {
		t.Fatal(err)
	}
	for _, v := range vips {
		<-a.vips[v.Name].evaluated
	}
	return a, store, ctx
}

// TestStableVIPProbesAtProbeInterval drives one VIP's evaluations by hand
// (its own timer is an hour away) and counts the probe connections and
// show stat calls: a stable VIP is probed on every 5th evaluation
// (ProbeInterval 5 x Interval) while show stat runs at each; a server
// going down, a failing show stat or a listener event brings full probing
// at FastInterval back at once, and rise after a withdrawal still takes
// Rise evaluations.
func TestStableVIPProbesAtProbeInterval(t *testing.T) {
	probes, addr := countingServer(t)
	be := &countingBackends{}
	be.up.Store(2)
	vip := health.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes:   []health.Probe{{Kind: health.ProbeTCP, Addr: addr}},
		Backends: []health.Backend{{Name: "be", MinUp: 1}}}
	a, _, ctx := manualAgent(t, Config{Deps: health.Deps{Backends: be},
		Interval: time.Hour, FastInterval: time.Hour, ProbeInterval: 5 * time.Hour, Rise: 2, Fall: 2}, vip)
	s := a.vips["a"] // its own first evaluation made; the next is an hour away
	waitFor(t, "the first evaluation's probe accepted", func() bool { return probes.Load() == 1 })

	healthy := func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return s.tracker.Healthy()
	}
	// step runs n evaluations and returns how many probe connections and
	// show stat calls they made and whether the last asked for
	// FastInterval. TCP probes are counted once accepted: wait for the
	// server to have seen them (the agent counts the evaluations that
	// probed).
	step := func(n int) (nprobes, nstats int, fast bool) {
		t.Helper()
		a.mu.Lock()
		runs0 := s.probeRuns
		a.mu.Unlock()
		p0, c0 := probes.Load(), be.calls.Load()
		for range n {
			fast = a.evaluate(ctx, s, time.Time{})
		}
		a.mu.Lock()
		runs := s.probeRuns - runs0
		a.mu.Unlock()
		waitFor(t, "probe connections accepted", func() bool { return probes.Load()-p0 >= int64(runs) })
		return int(probes.Load() - p0), int(be.calls.Load() - c0), fast
	}

	// Rise 2: one more evaluation makes it healthy; one more makes it
	// stable (healthy and unchanged for max(Rise, Fall) = 2).
	if p, c, fast := step(1); !healthy() || p != 1 || c != 1 || fast {
		t.Fatalf("rise: healthy %v, %d probes, %d show stat, fast %v", healthy(), p, c, fast)
	}
	if p, c, fast := step(1); p != 1 || c != 1 || fast {
		t.Fatalf("settling: %d probes, %d show stat, fast %v", p, c, fast)
	}
	// Stable: probes on every 5th evaluation, show stat at each, at
	// Interval.
	if p, c, fast := step(20); p != 4 || c != 20 || fast || !healthy() {
		t.Fatalf("stable, 20 evaluations: %d probes (want 4), %d show stat (want 20), fast %v, healthy %v", p, c, fast, healthy())
	}

	// A server goes down (still MinUp up): the evaluation that sees it
	// asks for FastInterval, the next two (the window) probe.
	be.up.Store(1)
	if p, c, fast := step(1); p != 0 || c != 1 || !fast {
		t.Fatalf("server down, first evaluation: %d probes, %d show stat, fast %v", p, c, fast)
	}
	if p, c, fast := step(2); p != 2 || c != 2 || fast {
		t.Fatalf("after a server went down: %d probes (want 2), %d show stat, fast %v after the window", p, c, fast)
	}
	if p, _, _ := step(5); p != 1 {
		t.Fatalf("stable again, 5 evaluations: %d probes, want 1", p)
	}

	// show stat fails (no server up): that evaluation fails without
	// probing (the verdict does not wait for a probe through an HAProxy
	// without servers), asks for FastInterval, and so does every one
	// until the VIP settled unhealthy; show stat is then read at every
	// evaluation, and the probes wait until it passes.
	be.up.Store(0)
	if p, c, fast := step(1); p != 0 || c != 1 || !fast || !healthy() {
		t.Fatalf("show stat failing, first evaluation: %d probes, %d show stat, fast %v, healthy %v", p, c, fast, healthy())
	}
	if p, _, _ := step(1); p != 0 || healthy() {
		t.Fatalf("fall: %d probes, healthy %v", p, healthy())
	}
	if p, c, fast := step(4); p != 0 || c != 4 || fast {
		t.Fatalf("unhealthy, 4 evaluations: %d probes, %d show stat, fast %v", p, c, fast)
	}
	// Rise is not slowed: Rise evaluations, each probing.
	be.up.Store(2)
	if p, _, fast := step(1); p != 1 || !fast || healthy() {
		t.Fatalf("rise 1/2: %d probes, fast %v, healthy %v", p, fast, healthy())
	}
	if p, _, _ := step(1); p != 1 || !healthy() {
		t.Fatalf("rise 2/2: %d probes, healthy %v", p, healthy())
	}
	step(6) // stable again

	// A listener-close event withdraws at once; every evaluation probes
	// until the VIP rose (Rise 2) and is stable again.
	a.event(ListenerEvent{Addr: addr, Up: false, At: time.Now()})
	if healthy() {
		t.Fatal("listener event did not withdraw")
	}
	if p, c, fast := step(1); p != 1 || c != 1 || !fast {
		t.Fatalf("after the event: %d probes, %d show stat, fast %v", p, c, fast)
	}
	if p, _, _ := step(1); p != 1 || !healthy() {
		t.Fatalf("rise after the event: %d probes, healthy %v", p, healthy())
	}
	if p, _, fast := step(1); p != 1 || fast {
		t.Fatalf("settling after the event: %d probes, fast %v", p, fast)
	}
	if p, _, _ := step(10); p != 2 {
		t.Fatalf("stable after the event, 10 evaluations: %d probes, want 2", p)
	}

	// A listener opening (HAProxy restarted or reloaded) probes fully
	// again at once, without withdrawing.
	a.event(ListenerEvent{Addr: addr, Up: true, At: time.Now()})
	if p, _, fast := step(1); p != 1 || !fast || !healthy() {
		t.Fatalf("after a listener opened: %d probes, fast %v, healthy %v", p, fast, healthy())
	}
}

// TestBackendEventsReplaceShowStat: a stable VIP whose HAProxy sends its
// state changes reads show stat only once BackendInterval passed since
// the last read (its probes, every 5th evaluation, read none), and a state event makes the VIP's own goroutine evaluate at
// once (its timer is an hour away) and read show stat, and a read of its
// own withdraws the VIP at once when a backend has too few servers up
// (HAProxy's check has its own fall count). A VIP whose HAProxy does
// not send events (a release rendered before them) reads show stat at every
// evaluation.
func TestBackendEventsReplaceShowStat(t *testing.T) {
	probes, addr := countingServer(t)
	be := &countingBackends{}
	be.up.Store(2)
	vip := health.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes:   []health.Probe{{Kind: health.ProbeTCP, Addr: addr}},
		Backends: []health.Backend{{Name: "be", MinUp: 1}}, Events: true}
	old := vip
	old.Name, old.Addresses, old.Events = "old", []netip.Addr{netip.MustParseAddr("192.0.2.11")}, false
	events := make(chan BackendEvent) // on; events are handed in by hand below
	a, _, ctx := manualAgent(t, Config{Deps: health.Deps{Backends: be},
		BackendEvents: events, Interval: time.Hour, FastInterval: time.Hour, ProbeInterval: 5 * time.Hour,
		BackendInterval: time.Hour, Rise: 2, Fall: 2}, vip, old)
	s, o := a.vips["a"], a.vips["old"]
	waitFor(t, "the first evaluations' probes accepted", func() bool { return probes.Load() == 2 })
	counts := func(s *vipState) (evals, stats int) {
		a.mu.Lock()
		defer a.mu.Unlock()
		return s.evals, s.statReads
	}
	for _, v := range []*vipState{s, o} {
		for range 22 { // rise (1), settle (1), then 20 stable
			a.evaluate(ctx, v, time.Time{})
		}
	}
	if _, n := counts(s); n != 1+2 {
		t.Errorf("VIP with events: %d show stat in 23 evaluations, want 3 (until stable, then none)", n)
	}
	if _, n := counts(o); n != 23 {
		t.Errorf("VIP without events: %d show stat in 23 evaluations, want 23", n)
	}
	// BackendInterval after the last read, the next evaluation reads
	// show stat once (the backstop for a lost event), and the VIP stays
	// stable.
	a.mu.Lock()
	s.upAt = s.upAt.Add(-time.Hour)
	a.mu.Unlock()
	_, n1 := counts(s)
	for range 10 {
		a.evaluate(ctx, s, time.Time{})
	}
	if _, n := counts(s); n != n1+1 {
		t.Errorf("VIP with events, BackendInterval after its last read: %d show stat in 10 evaluations, want 1", n-n1)
	}

	be.up.Store(0)
	e0, n0 := counts(s)
	a.backendEvent(BackendEvent{VIP: "a", Text: "Server be/s1 is DOWN"}) // what Run's reader calls
	waitFor(t, "the VIP's own evaluation after the event", func() bool {
		e, n := counts(s)
		return e == e0+1 && n == n0+1
	})
	// HAProxy's check decided (with its own fall): the event's read of
	// show stat withdraws at once, without the agent's Fall 2.
	waitFor(t, "the VIP withdrawn by the event's read", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !s.tracker.Healthy()
	})
	a.mu.Lock()
	healthy, reasons := s.tracker.Healthy(), s.last.Reasons
	a.mu.Unlock()
	if healthy || !slices.Equal(reasons, []string{"backend be: 0 of at least 1 servers up"}) {
		t.Errorf("after the event with no server up: healthy %v, reasons %q", healthy, reasons)
	}
	a.backendEvent(BackendEvent{VIP: "unknown", Text: "x"}) // ignored
}

// TestStableVIPProbesInTurn: a stable VIP with three listeners runs one
// probe in turn on each of its probe runs (every 5th evaluation), so each
// listener is probed once in three runs; until it is stable, and after a
// failed probe, every evaluation probes all three.
func TestStableVIPProbesInTurn(t *testing.T) {
	var counts [3]*atomic.Int64
	var ps []health.Probe
	for i := range counts {
		var addr netip.AddrPort
		counts[i], addr = countingServer(t)
		ps = append(ps, health.Probe{Kind: health.ProbeTCP, Addr: addr})
	}
	vip := health.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, Probes: ps}
	a, _, ctx := manualAgent(t, Config{Interval: time.Hour, FastInterval: time.Hour,
		ProbeInterval: 5 * time.Hour, Rise: 2, Fall: 2}, vip)
	s := a.vips["a"]
	hits := func() (h [3]int64) {
		for i, c := range counts {
			h[i] = c.Load()
		}
		return h
	}
	// wait until the listeners have accepted want connections in all.
	wait := func(want int64) [3]int64 {
		waitFor(t, "probe connections accepted", func() bool { h := hits(); return h[0]+h[1]+h[2] >= want })
		return hits()
	}
	for range 2 { // rise, then settle: every probe each time
		a.evaluate(ctx, s, time.Time{})
	}
	if h := wait(9); h != [3]int64{3, 3, 3} {
		t.Fatalf("until stable: connections per listener %v, want 3 each", h)
	}
	for range 15 { // stable: 3 probe runs (every 5th evaluation), one listener each
		a.evaluate(ctx, s, time.Time{})
	}
	if h := wait(12); h != [3]int64{4, 4, 4} {
		t.Errorf("stable, 15 evaluations: connections per listener %v, want one more each (one probe per run, in turn)", h)
	}
}

// TestReloadUnsettlesOnlyChangedVIPs: a reload (an install changed one
// VIP) makes only the VIP whose health specification changed probe fully
// again; the unchanged one stays stable.
func TestReloadUnsettlesOnlyChangedVIPs(t *testing.T) {
	_, addr := countingServer(t)
	_, addr2 := countingServer(t)
	mk := func(name, ip string, p netip.AddrPort) health.VIP {
		return health.VIP{Name: name, Addresses: []netip.Addr{netip.MustParseAddr(ip)},
			Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: p}}}
	}
	a1, b1 := mk("a", "192.0.2.10", addr), mk("b", "192.0.2.11", addr)
	a, store, ctx := manualAgent(t, Config{Interval: time.Hour, FastInterval: time.Hour,
		ProbeInterval: 5 * time.Hour, Rise: 2, Fall: 2}, a1, b1)
	sa, sb := a.vips["a"], a.vips["b"]
	for range 4 {
		a.evaluate(ctx, sa, time.Time{})
		a.evaluate(ctx, sb, time.Time{})
	}
	alert := func(s *vipState) bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return s.alert || s.steady < a.window()
	}
	if alert(sa) || alert(sb) {
		t.Fatalf("not stable after 5 healthy evaluations: a %v, b %v", alert(sa), alert(sb))
	}
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{a1, mk("b", "192.0.2.11", addr2)}})
	if _, err := a.load(); err != nil {
		t.Fatal(err)
	}
	if alert(sa) || !alert(sb) {
		t.Errorf("after a reload that changed b's probe: a unsettled %v (want false), b %v (want true)", alert(sa), alert(sb))
	}
}
