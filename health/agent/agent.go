// Package agent is the node's health agent loop: it watches every
// announceable VIP (unit, listeners, accept queue, probes, backends), reacts
// at once to listener-close events from the kernel, and keeps BIRD
// announcing exactly the VIPs that are healthy and not drained. It serves
// its status on a root-only unix socket and Prometheus metrics.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// Announcer is the part of health/bird's Announcer the agent uses.
type Announcer interface {
	// Request applies a set asynchronously, coalescing bursts.
	Request(prefixes []netip.Prefix)
	// Set applies a set and returns when BIRD shows it.
	Set(ctx context.Context, prefixes []netip.Prefix) error
}

// ListenerEvent is a listener of the LB's namespace opening or closing.
type ListenerEvent struct {
	Addr netip.AddrPort
	Up   bool
	At   time.Time
}

// Config of an agent.
type Config struct {
	Store     *release.Store
	Deps      health.Deps
	Announcer Announcer
	// Events of listeners opening and closing (nil without eBPF), and the
	// kernel-side filter told which listeners to report (in the network
	// namespace with inode WatchNetNS; 0 means any).
	Events     <-chan ListenerEvent
	Watcher    Watcher
	WatchNetNS uint64
	// Interval between evaluations; FastInterval while a VIP is changing
	// state. Defaults 1 s and 200 ms.
	Interval, FastInterval time.Duration
	// Rise and Fall counts. Defaults 3 and 2.
	Rise, Fall int
	// KeepRoutesOnShutdown leaves routes announced when the agent stops;
	// by default a clean shutdown withdraws every route.
	KeepRoutesOnShutdown bool
	// Probe says which socket probe is in use ("ebpf" or "sock_diag
	// (eBPF unavailable: ...)"), for status.
	Probe   string
	Log     *slog.Logger
	Metrics *Metrics
	// Handoff is the flow handoff datapath (nil: none).
	Handoff Handoff
}

// VIPStatus is one VIP in the agent's status.
type VIPStatus struct {
	Name         string    `json:"name"`
	Addresses    []string  `json:"addresses"`
	Healthy      bool      `json:"healthy"`
	Announced    bool      `json:"announced"`
	Drained      bool      `json:"drained"`
	Reasons      []string  `json:"reasons,omitempty"`
	Transitions  int       `json:"transitions"`
	ProbeLatency float64   `json:"probe_latency_seconds"`
	Since        time.Time `json:"since"`
}

// Status is the agent's view of the node.
type Status struct {
	// Serial of the committed release.
	Serial uint64      `json:"serial"`
	Probe  string      `json:"probe"`
	VIPs   []VIPStatus `json:"vips"`
	// Announced are the prefixes last requested from BIRD.
	Announced []string `json:"announced"`
	// Handoff is the flow handoff datapath's state (nil: not wired).
	Handoff *HandoffStatus `json:"handoff,omitempty"`
}

// Agent is a running health agent.
type Agent struct {
	cfg Config
	log *slog.Logger

	reload chan chan error

	mu        sync.Mutex
	serial    uint64
	vips      []plan.VIP
	trackers  map[string]*health.Tracker
	last      map[string]health.Result
	since     map[string]time.Time
	drains    release.Drains
	announced []netip.Prefix
	published bool
	lastEval  time.Time
	// handoffSerial and handoffAt: the release last handed to the flow
	// handoff datapath, and when (only the Run goroutine uses them).
	handoffSerial uint64
	handoffAt     time.Time
}

// LastEvaluation is when the loop last evaluated every VIP; the watchdog
// pings systemd only while this stays recent.
func (a *Agent) LastEvaluation() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastEval
}

// New returns an agent; Run starts it.
func New(cfg Config) *Agent {
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.FastInterval == 0 {
		cfg.FastInterval = 200 * time.Millisecond
	}
	if cfg.Rise == 0 {
		cfg.Rise = 3
	}
	if cfg.Fall == 0 {
		cfg.Fall = 2
	}
	l := cfg.Log
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, log: l, reload: make(chan chan error),
		trackers: map[string]*health.Tracker{}, last: map[string]health.Result{}, since: map[string]time.Time{}}
}

// Reload makes the agent re-read the announceable set and drain state and
// publish; it returns once BIRD shows the result (or with the error that
// kept it from doing so).
func (a *Agent) Reload(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case a.reload <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run evaluates and announces until ctx ends; then, unless configured to
// keep them, it withdraws every route.
func (a *Agent) Run(ctx context.Context, ready func()) error {
	if err := a.loadAndWatch(); err != nil {
		return err
	}
	a.evaluate(ctx)
	last := time.Now()
	if ready != nil {
		ready()
	}
	due := time.Now().Add(a.interval())
	timer := time.NewTimer(time.Until(due))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case done := <-a.reload:
			err := a.loadAndWatch()
			if err != nil {
				a.log.Error("reload", "err", err)
			}
			a.evaluate(ctx)
			last = time.Now()
			if err == nil {
				// Whoever asked (an install's announce step, drain) waits
				// until BIRD shows the set.
				sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = a.cfg.Announcer.Set(sctx, a.desired())
				cancel()
			}
			done <- err
		case ev, ok := <-a.cfg.Events:
			if !ok {
				a.cfg.Events = nil
				continue
			}
			// A listener opening pulls the next evaluation forward, but
			// never closer than FastInterval to the previous one: a
			// restarted HAProxy opens one listener after the other, and
			// Rise must still count evaluations spread over time.
			if a.event(ev) {
				if soon := last.Add(a.cfg.FastInterval); soon.Before(due) {
					due = soon
					timer.Reset(max(time.Until(due), 0))
				}
			}
		case <-timer.C:
			a.evaluate(ctx)
			last = time.Now()
			// After the evaluation, so that a failover never waits for it.
			a.applyHandoff(false)
			due = last.Add(a.interval())
			timer.Reset(a.interval())
		}
	}
}

func (a *Agent) interval() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.trackers {
		if t.Changing() {
			return a.cfg.FastInterval
		}
	}
	return a.cfg.Interval
}

// load reads the announceable set and the drain state.
func (a *Agent) load() error {
	ann, err := a.cfg.Store.ReadAnnounceable()
	if err != nil {
		return err
	}
	drains, err := a.cfg.Store.ReadDrains()
	if err != nil {
		return err
	}
	serial, _, err := a.cfg.Store.Current()
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.serial, a.vips, a.drains = serial, ann.VIPs, drains
	keep := map[string]*health.Tracker{}
	for _, v := range ann.VIPs {
		t := a.trackers[v.Name]
		if t == nil {
			t = health.NewTracker(a.cfg.Rise, a.cfg.Fall)
			a.since[v.Name] = time.Now()
		}
		keep[v.Name] = t
	}
	a.trackers = keep
	return nil
}

// loadAndWatch reads the inputs and updates the kernel's listener filter.
func (a *Agent) loadAndWatch() error {
	if err := a.load(); err != nil {
		return err
	}
	a.applyHandoff(true)
	if err := a.watch(); err != nil {
		// Polling still sees a closed listener, only later.
		a.log.Error("listener events unavailable", "err", err)
	}
	return nil
}

// evaluate checks every VIP once and publishes if anything changed.
func (a *Agent) evaluate(ctx context.Context) {
	a.mu.Lock()
	vips := slices.Clone(a.vips)
	a.mu.Unlock()
	var listeners []health.Listener
	d := a.cfg.Deps
	if d.Sockets != nil {
		l, err := d.Sockets.Listeners(ctx)
		if err != nil {
			a.log.Warn("listing listeners", "err", err)
		}
		listeners = l
		if listeners == nil {
			listeners = []health.Listener{}
		}
	}
	results := make([]health.Result, len(vips))
	var wg sync.WaitGroup
	for i := range vips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = health.Evaluate(ctx, &vips[i], d, listeners)
		}()
	}
	wg.Wait()
	a.mu.Lock()
	a.lastEval = time.Now()
	for _, r := range results {
		t := a.trackers[r.VIP]
		if t == nil {
			continue
		}
		a.last[r.VIP] = r
		if t.Observe(r.OK) {
			a.since[r.VIP] = time.Now()
			a.log.Info("vip health changed", "vip", r.VIP, "healthy", t.Healthy(), "reasons", r.Reasons)
		}
	}
	a.mu.Unlock()
	a.publish()
}

// event reacts to a listener closing by marking its VIPs down at once; it
// reports whether the event was an expected listener opening, which calls
// for an evaluation.
func (a *Agent) event(ev ListenerEvent) (opened bool) {
	a.mu.Lock()
	var hit []string
	for _, v := range a.vips {
		if slices.Contains(health.Expected(&v), ev.Addr) {
			hit = append(hit, v.Name)
		}
	}
	changed := false
	if !ev.Up {
		for _, n := range hit {
			if a.trackers[n].Down() {
				changed = true
				a.since[n] = time.Now()
				a.last[n] = health.Result{VIP: n, Reasons: []string{"listener " + ev.Addr.String() + " closed"}}
				a.log.Warn("listener closed, withdrawing", "vip", n, "addr", ev.Addr)
			}
		}
	}
	a.mu.Unlock()
	if changed {
		a.publish()
	}
	return ev.Up && len(hit) > 0
}

// desired returns the prefixes last published.
func (a *Agent) desired() []netip.Prefix {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.announced)
}

// publish requests the announcement of every healthy, undrained VIP.
func (a *Agent) publish() {
	a.mu.Lock()
	var want []netip.Prefix
	for _, v := range a.vips {
		if a.trackers[v.Name].Healthy() && !a.drains.Drained(v.Name) {
			for _, ad := range v.Addresses {
				want = append(want, netip.PrefixFrom(ad, ad.BitLen()))
			}
		}
	}
	slices.SortFunc(want, func(p, q netip.Prefix) int { return p.Addr().Compare(q.Addr()) })
	same := a.published && slices.Equal(want, a.announced)
	a.announced, a.published = want, true
	a.updateMetrics()
	a.mu.Unlock()
	if !same {
		a.cfg.Announcer.Request(want)
	}
}

func (a *Agent) shutdown() error {
	if a.cfg.KeepRoutesOnShutdown {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.log.Info("withdrawing every route on shutdown")
	if err := a.cfg.Announcer.Set(ctx, nil); err != nil {
		return errors.Join(errors.New("withdraw on shutdown"), err)
	}
	return nil
}

// Status returns a snapshot of the agent's view.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Status{Serial: a.serial, Probe: a.cfg.Probe, Announced: []string{}}
	for _, p := range a.announced {
		st.Announced = append(st.Announced, p.String())
	}
	for _, v := range a.vips {
		t := a.trackers[v.Name]
		vs := VIPStatus{Name: v.Name, Healthy: t.Healthy(), Drained: a.drains.Drained(v.Name),
			Reasons: a.last[v.Name].Reasons, Transitions: t.Transitions,
			ProbeLatency: a.last[v.Name].ProbeLatency.Seconds(), Since: a.since[v.Name]}
		for _, ad := range v.Addresses {
			vs.Addresses = append(vs.Addresses, ad.String())
		}
		vs.Announced = vs.Healthy && !vs.Drained
		st.VIPs = append(st.VIPs, vs)
	}
	if a.cfg.Handoff != nil {
		hs := a.cfg.Handoff.Status()
		st.Handoff = &hs
	}
	return st
}
