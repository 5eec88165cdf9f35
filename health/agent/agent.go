// Package agent is the node's health agent loop: it watches every
// announceable VIP (unit, listeners, accept queue, probes, backends), reacts
// at once to listener-close events from the kernel, and keeps BIRD
// announcing exactly the VIPs that are healthy and not drained. It serves
// its status on a root-only unix socket and Prometheus metrics.
//
// Every VIP is evaluated by its own goroutine on its own jittered timer
// (rounded to a shared slot grid, so that timers due together wake the
// process once), under its own deadline, so a VIP whose HAProxy hangs never delays another
// VIP's evaluation or a listener event. One listener dump, refreshed by the
// socket watcher every StallInterval, serves every VIP's evaluation; the
// same watcher notices an accept queue that stops draining (a hung HAProxy)
// and confirms it through the VIP's runtime API before withdrawing. A stop
// signal sent to a process of the LB's namespace (eBPF) makes it look at
// every VIP's HAProxy processes at once. The cost of a listener event is a
// map lookup: it never evaluates other VIPs.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health"
)

// Announcer is the part of health/bird's Announcer the agent uses.
type Announcer interface {
	// Request applies a set asynchronously, coalescing bursts.
	Request(prefixes []netip.Prefix)
	// Set applies a set and returns when BIRD shows it.
	Set(ctx context.Context, prefixes []netip.Prefix) error
}

// PreviousAnnouncer is an Announcer that knows what the node announced
// before the agent started (*bird.Announcer: its include files).
type PreviousAnnouncer interface {
	Previous() []netip.Prefix
}

// GracefulShutdowner is an Announcer that can mark every route with the
// GRACEFUL_SHUTDOWN community (*bird.Announcer); SetGracefulShutdown
// reports whether the setting changed.
type GracefulShutdowner interface {
	SetGracefulShutdown(on bool) bool
}

// Runtime asks a VIP's HAProxy whether it still answers (its runtime API);
// the agent uses it to tell a hung HAProxy from a busy one when an accept
// queue stops draining.
type Runtime interface {
	Responds(ctx context.Context, vip string) error
}

// BackendEvent is a VIP's HAProxy logging a change of one of its servers'
// or backends' state (health/haproxy.Event): a hint to read the VIP's
// backends at once, never a verdict.
type BackendEvent struct {
	VIP  string
	Text string
}

// Processes tells whether a VIP's HAProxy is stopped (SIGSTOP): a hung
// HAProxy that the kernel shows as such, without asking it anything.
type Processes interface {
	// Stopped reports whether every worker of the VIP's HAProxy is
	// stopped and names them; false when it cannot tell.
	Stopped(vip string) (workers []int, stopped bool)
}

// StopSignal is a stop or continue signal sent to a process of the LB's
// namespace (bpf.Signal): a hint to look at the VIPs' HAProxy processes.
type StopSignal struct {
	Sig syscall.Signal
	At  time.Time
}

// UnitEvent is a VIP's HAProxy unit changing its ActiveState, from
// systemd's signals (systemd.UnitWatch.Notify).
type UnitEvent struct {
	VIP, State string
}

// ListenerEvent is a listener of the LB's namespace opening or closing.
type ListenerEvent struct {
	Addr netip.AddrPort
	Up   bool
	At   time.Time
}

// Store is what the agent reads of the node's release store
// (node/release.Store): the committed serial, the announceable set, the
// operator's drain state and a release's firewall.
type Store interface {
	Current() (serial uint64, ok bool, err error)
	ReadAnnounceable() (health.Announceable, error)
	ReadDrains() (health.Drains, error)
	Firewall(serial uint64) (model.Firewall, error)
}

// Config of an agent.
type Config struct {
	Store     Store
	Deps      health.Deps
	Announcer Announcer
	// Events of listeners opening and closing (nil without eBPF), and the
	// kernel-side filter told which listeners to report (in the network
	// namespace with inode WatchNetNS; 0 means any).
	Events     <-chan ListenerEvent
	Watcher    Watcher
	WatchNetNS uint64
	// BackendEvents are the VIPs' HAProxy state changes (nil: none). With
	// them, a stable VIP whose HAProxy sends them (health.VIP.Events) has
	// its backends read only on an event and every ProbeInterval.
	BackendEvents <-chan BackendEvent
	// UnitEvents are the VIPs' units changing state (nil: none). A unit
	// that leaves active (its HAProxy's main process died, a restart, a
	// stop) withdraws the VIP at once: systemd sees the master die before
	// the worker has closed its listeners.
	UnitEvents <-chan UnitEvent
	// Processes, when set, is asked by the socket watcher about every
	// VIP about twice a second: a stopped HAProxy is withdrawn at once.
	// With StopSignals it is asked on every stop signal instead, and
	// every StoppedBackstop (default 5 s: a signal lost, a process that
	// stopped long after the signal).
	Processes       Processes
	StoppedBackstop time.Duration
	// StopSignals are stop and continue signals sent to processes of
	// the LB's namespace (from eBPF; nil: none): each makes the agent ask
	// Processes about every VIP at once and a few times in the next half
	// second, since a process stops a moment after the signal is sent.
	StopSignals <-chan StopSignal
	// Interval between evaluations of a VIP; FastInterval while the VIP is
	// changing state. Defaults 1 s and 200 ms. Each VIP's timer is
	// jittered by up to a tenth of the interval, so evaluations spread over
	// it instead of arriving all at once.
	Interval, FastInterval time.Duration
	// BackendInterval is how often a stable VIP whose HAProxy sends its
	// state events has its backends read anyway (default 30 s): the
	// backstop for an event lost on the way. Every other change of a
	// server's state arrives as an event.
	BackendInterval time.Duration
	// ProbeInterval is how often a stable VIP's active probes run (default
	// 5 s): one of them in turn when it has several (a VIP's listeners
	// are one HAProxy, and every listing shows them all), so that each
	// runs every len(probes) x ProbeInterval; its other checks still run
	// every Interval. A VIP is stable
	// once it was healthy for max(Rise, Fall) evaluations in a row with
	// nothing changing; then the probes run on every
	// round(ProbeInterval/Interval)-th evaluation, and the evaluations in
	// between reuse the last probes' outcome. Any failure, a change in its
	// servers up, a listener event, a stall suspicion or a reload makes the
	// VIP unstable again: full probing at FastInterval until it is stable.
	// A VIP that is not healthy is probed at every evaluation, so rise is
	// unchanged. At most Interval disables the reduction.
	ProbeInterval time.Duration
	// Rise and Fall counts. Defaults 3 and 2.
	Rise, Fall int
	// EvalTimeout bounds one evaluation of one VIP (default Interval, at
	// least the probe timeout).
	EvalTimeout time.Duration
	// StallInterval is how often the socket watcher lists the listeners
	// (the listing every evaluation reads) and compares accept queues
	// (default 200 ms; rounded to a multiple of the steady grid, see
	// stallPeriod). StallTimeout is how long a VIP's runtime API may
	// take to answer when its accept queue did not drain (default 400 ms).
	// Runtime answers that question; nil disables hung-HAProxy detection.
	StallInterval, StallTimeout time.Duration
	Runtime                     Runtime
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
	// Evaluations counts the VIP's completed evaluations.
	Evaluations int `json:"evaluations"`
	// StateEvents counts the state changes its HAProxy reported.
	StateEvents int `json:"state_events"`
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

// vipState is one VIP and the goroutine that evaluates it. The fields below
// the channels are guarded by Agent.mu.
type vipState struct {
	kick chan struct{} // evaluate soon (a listener of the VIP opened)
	poke chan struct{} // evaluate now (its backends changed)
	stop context.CancelFunc
	// evaluated is closed after the first evaluation.
	evaluated chan struct{}

	vip      health.VIP
	expected []netip.AddrPort
	// resume: the node announced the VIP when the agent started (it
	// restarted); a first evaluation that passes makes it healthy at once
	// instead of after Rise evaluations, so a restart does not withdraw it.
	resume  bool
	tracker *health.Tracker
	last    health.Result
	since   time.Time
	// downs counts immediate withdrawals (listener closed, hung); an
	// evaluation that started before the latest one is discarded.
	downs int
	// confirming is set while a stall confirmation runs; calmUntil skips
	// confirmations for a while after the runtime API answered.
	confirming bool
	calmUntil  time.Time
	// evals counts completed evaluations, probeRuns those that ran the
	// active probes, statReads those that read the backends;
	// backendEvents counts HAProxy's state events.
	evals, probeRuns, statReads, backendEvents int
	// readingBackends is set while a backend event's read runs.
	readingBackends bool
	// steady counts the evaluations in a row (up to Agent.window) that
	// found the VIP healthy and unchanged; alert is set by anything that
	// makes the VIP unstable (unsettleLocked) and cleared once it is
	// stable again or settled unhealthy: evaluations then come at
	// FastInterval. probed is the last probes' outcome, sinceProbe the
	// evaluations since they ran, up the servers up the last evaluation
	// counted.
	steady     int
	alert      bool
	probed     health.Probed
	sinceProbe int
	up         map[string]int
	// upAt is when the backends were last read.
	upAt time.Time
	// turn is the probe a stable VIP runs next (of several).
	turn int
}

// vipPrefix is one host route of a VIP.
type vipPrefix struct {
	p netip.Prefix
	s *vipState
}

// Agent is a running health agent.
type Agent struct {
	cfg Config
	log *slog.Logger
	// announcedAtStart are the prefixes BIRD's include files held when
	// Run started (PreviousAnnouncer); nil after the first load.
	announcedAtStart map[netip.Prefix]bool

	reload chan chan error

	mu     sync.Mutex
	runCtx context.Context
	wg     sync.WaitGroup
	serial uint64
	order  []*vipState // announceable order
	vips   map[string]*vipState
	byAddr map[netip.AddrPort][]*vipState
	// prefixes are every VIP's host routes sorted by address, so that
	// publishing filters them without sorting.
	prefixes  []vipPrefix
	drains    health.Drains
	announced []netip.Prefix
	published bool
	lastEval  time.Time

	snapMu  sync.Mutex // serialises listing; guards snap, snapIdx and snapAt
	snap    []health.Listener
	snapIdx map[netip.AddrPort]health.Listener
	snapAt  time.Time
	snapErr error

	// handoffMu serializes handing the committed release to the flow
	// handoff datapath and guards the firewall last handed over (release
	// handoffSerial's; nil before the first).
	handoffMu     sync.Mutex
	handoffSerial uint64
	handoffFW     *model.Firewall
}

// LastEvaluation is when the agent last completed an evaluation or a round
// of its socket watcher; the watchdog pings systemd only while this stays
// recent.
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
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = 5 * time.Second
	}
	if cfg.BackendInterval == 0 {
		cfg.BackendInterval = 30 * time.Second
	}
	if cfg.StoppedBackstop == 0 {
		cfg.StoppedBackstop = 5 * time.Second
	}
	if cfg.Rise == 0 {
		cfg.Rise = 3
	}
	if cfg.Fall == 0 {
		cfg.Fall = 2
	}
	if cfg.EvalTimeout == 0 {
		pt := cfg.Deps.ProbeTimeout
		if pt == 0 {
			pt = 2 * time.Second // health/probe.DefaultTimeout
		}
		cfg.EvalTimeout = max(cfg.Interval, pt+500*time.Millisecond)
	}
	if cfg.StallInterval == 0 {
		cfg.StallInterval = 200 * time.Millisecond
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 400 * time.Millisecond
	}
	l := cfg.Log
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics != nil && cfg.Handoff != nil {
		cfg.Metrics.handoff.set(cfg.Handoff)
	}
	return &Agent{cfg: cfg, log: l, reload: make(chan chan error),
		vips: map[string]*vipState{}, byAddr: map[netip.AddrPort][]*vipState{}}
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
// keep them, it withdraws every route. ready is called once every VIP was
// evaluated once.
func (a *Agent) Run(ctx context.Context, ready func()) error {
	wctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		a.wg.Wait()
	}()
	a.mu.Lock()
	a.runCtx = wctx
	a.mu.Unlock()
	if a.cfg.Deps.Sockets != nil {
		a.refreshListeners(wctx)
	}
	a.rememberAnnounced()
	started, err := a.loadAndWatch()
	a.mu.Lock()
	a.announcedAtStart = nil // VIPs of later reloads are new: Rise applies
	a.mu.Unlock()
	if err != nil {
		return err
	}
	// Wait for every VIP's first evaluation (each bounded by EvalTimeout).
	for _, s := range started {
		select {
		case <-s.evaluated:
		case <-ctx.Done():
			return a.shutdown()
		}
	}
	a.publish(true)
	if ready != nil {
		ready()
	}
	a.wg.Go(func() { a.watchSockets(wctx) })
	if a.cfg.Events != nil {
		a.wg.Go(func() { consume(wctx, a.cfg.Events, a.event) })
	}
	if a.cfg.BackendEvents != nil {
		a.wg.Go(func() { consume(wctx, a.cfg.BackendEvents, a.backendEvent) })
	}
	if a.cfg.UnitEvents != nil {
		a.wg.Go(func() { consume(wctx, a.cfg.UnitEvents, a.unitEvent) })
	}
	if a.cfg.StopSignals != nil && a.cfg.Processes != nil {
		a.wg.Go(func() { a.watchStops(wctx) })
	}
	if a.cfg.Handoff != nil {
		a.wg.Go(func() { a.handoffLoop(wctx) })
	}
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case done := <-a.reload:
			_, err := a.loadAndWatch()
			if err != nil {
				a.log.Error("reload", "err", err)
			}
			a.publish(true)
			if err == nil {
				// Whoever asked (an install's announce step, drain) waits
				// until BIRD shows the set.
				sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = a.cfg.Announcer.Set(sctx, a.desired())
				cancel()
			}
			done <- err
		}
	}
}

// load reads the announceable set and the drain state, starts a goroutine
// for every new VIP and stops those of VIPs that left; it returns the VIPs
// it started.
func (a *Agent) load() ([]*vipState, error) {
	ann, err := a.cfg.Store.ReadAnnounceable()
	if err != nil {
		return nil, err
	}
	drains, err := a.cfg.Store.ReadDrains()
	if err != nil {
		return nil, err
	}
	serial, _, err := a.cfg.Store.Current()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.serial, a.drains = serial, drains
	keep := make(map[string]*vipState, len(ann.VIPs))
	order := make([]*vipState, 0, len(ann.VIPs))
	byAddr := map[netip.AddrPort][]*vipState{}
	var started []*vipState
	for _, v := range ann.VIPs {
		s := a.vips[v.Name]
		if s == nil {
			s = &vipState{kick: make(chan struct{}, 1), poke: make(chan struct{}, 1), evaluated: make(chan struct{}),
				tracker: health.NewTracker(a.cfg.Rise, a.cfg.Fall), since: time.Now()}
			for _, ad := range v.Addresses {
				s.resume = s.resume || a.announcedAtStart[netip.PrefixFrom(ad, ad.BitLen())]
			}
			var wctx context.Context
			wctx, s.stop = context.WithCancel(a.runCtx)
			started = append(started, s)
			a.wg.Go(func() { a.work(wctx, s) })
		} else if !reflect.DeepEqual(s.vip, v) {
			// Its health specification changed: probe fully again (a
			// new VIP does until stable). An unchanged VIP stays as it
			// is: at 500 VIPs, re-probing every VIP after an install
			// that changed one was a burst of thousands of probes on
			// both nodes; a VIP whose HAProxy an install reloads is
			// unsettled by its unit's "reloading" (unitEvent).
			a.unsettleLocked(s)
		}
		s.vip, s.expected = v, health.Expected(&v)
		keep[v.Name] = s
		order = append(order, s)
		for _, ap := range s.expected {
			byAddr[ap] = append(byAddr[ap], s)
		}
	}
	for name, s := range a.vips {
		if keep[name] == nil {
			s.stop()
		}
	}
	var prefixes []vipPrefix
	for _, s := range order {
		for _, ad := range s.vip.Addresses {
			prefixes = append(prefixes, vipPrefix{netip.PrefixFrom(ad, ad.BitLen()), s})
		}
	}
	slices.SortStableFunc(prefixes, func(p, q vipPrefix) int { return p.p.Addr().Compare(q.p.Addr()) })
	a.vips, a.order, a.byAddr, a.prefixes = keep, order, byAddr, prefixes
	return started, nil
}

// rememberAnnounced records what the node announced when the agent
// started, for load to mark those VIPs resume.
func (a *Agent) rememberAnnounced() {
	p, ok := a.cfg.Announcer.(PreviousAnnouncer)
	if !ok {
		return
	}
	prev := p.Previous()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.announcedAtStart = make(map[netip.Prefix]bool, len(prev))
	for _, pf := range prev {
		a.announcedAtStart[pf] = true
	}
}

// loadAndWatch reads the inputs and updates the kernel's listener filter.
func (a *Agent) loadAndWatch() ([]*vipState, error) {
	started, err := a.load()
	if err != nil {
		return nil, err
	}
	a.applyHandoff()
	if err := a.watch(); err != nil {
		// Polling still sees a closed listener, only later.
		a.log.Error("listener events unavailable", "err", err)
	}
	return started, nil
}

// slot is the grid every VIP's timer and the socket watcher's ticks are
// rounded up to (FastInterval/8 between 1 and 25 ms; 25 ms by default): a
// VIP's evaluation comes at most one slot late. Timers due within one
// slot fire together, so the process wakes at most 1/slot times a second
// however many VIPs it watches. Each wake-up costs the Go runtime 15-20
// context switches (sysmon, idle Ps woken to look for work) whatever it
// runs, which dominated the idle agent's CPU with one timer per VIP.
func (a *Agent) slot() time.Duration {
	return min(max(a.cfg.FastInterval/8, time.Millisecond), 25*time.Millisecond)
}

// untilSlot returns the wait from now until the first slot boundary at or
// after now+d.
func (a *Agent) untilSlot(now time.Time, d time.Duration) time.Duration {
	return untilGrid(now, d, a.slot())
}

// steadySlot is the coarser grid of the evaluations of a VIP that is not
// changing state (Interval/10, at most 100 ms, never finer than slot):
// they wake the process a quarter as often as on the slot grid, and each
// such wake-up (two context switches, the Go runtime's monitor woken
// with it) costs more than the evaluations it runs.
func (a *Agent) steadySlot() time.Duration {
	return max(a.slot(), min(a.cfg.Interval/10, 100*time.Millisecond))
}

// Grid is the period of the stable VIPs' evaluations' wake-ups: other
// periodic work of the process should fall on its ticks.
func (a *Agent) Grid() time.Duration { return a.steadySlot() }

func untilGrid(now time.Time, d, grid time.Duration) time.Duration {
	due := now.Add(d)
	at := due.Truncate(grid)
	if at.Before(due) {
		at = at.Add(grid)
	}
	return max(at.Sub(now), 0)
}

// jitter returns d plus or minus up to a tenth of it.
func jitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d - d/10 + rand.N(d/5)
}

// work evaluates one VIP until ctx ends: at once, then every Interval
// (FastInterval while its state is changing), and FastInterval after the
// previous evaluation when one of its listeners opens: a restarted HAProxy
// opens one listener after the other, and Rise must still count
// evaluations spread over time.
func (a *Agent) work(ctx context.Context, s *vipState) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last, due, kicked time.Time
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			// The next evaluation must list the listeners after this.
			kicked = time.Now()
			if soon := last.Add(a.cfg.FastInterval); soon.Before(due) {
				due = soon
				timer.Reset(a.untilSlot(time.Now(), time.Until(due)))
			}
			continue
		case <-s.poke:
			timer.Stop() // reset below
		case <-timer.C:
		}
		changing := a.evaluate(ctx, s, kicked)
		last = time.Now()
		next := jitter(a.cfg.Interval)
		if first {
			// Spread the VIPs' evaluations over the interval.
			first = false
			close(s.evaluated)
			next = rand.N(a.cfg.Interval) + 1
		}
		grid := a.steadySlot()
		if changing {
			next, grid = a.cfg.FastInterval, a.slot()
		}
		due = last.Add(next)
		timer.Reset(untilGrid(last, next, grid))
	}
}

// evaluate checks one VIP once under its own deadline, records the result
// and publishes if its state changed; it reports whether the VIP is part
// way through a transition.
func (a *Agent) evaluate(ctx context.Context, s *vipState, notBefore time.Time) (changing bool) {
	a.mu.Lock()
	v, downs, expected := s.vip, s.downs, s.expected
	reuse := a.reuseProbesLocked(s)
	a.mu.Unlock()
	ectx, cancel := context.WithTimeout(ctx, a.cfg.EvalTimeout)
	defer cancel()
	var listeners []health.Listener
	if a.cfg.Deps.Sockets != nil {
		listeners = a.listeners(ectx, notBefore, expected)
	}
	r := health.EvaluateReusing(ectx, &v, a.cfg.Deps, listeners, reuse)
	if ctx.Err() != nil {
		return false
	}
	a.mu.Lock()
	rising := !s.tracker.Healthy()
	a.mu.Unlock()
	if p := a.cfg.Processes; p != nil && rising {
		// A stopped HAProxy can pass a TCP probe (the kernel completes
		// the handshake): it must not rise until continued.
		if workers, stopped := p.Stopped(v.Name); stopped {
			r.OK, r.Unknown = false, false
			r.Reasons = append(r.Reasons, fmt.Sprintf("HAProxy hung: stopped (process %v in state T)", workers))
		}
	}
	a.mu.Lock()
	now := time.Now()
	a.lastEval = now
	s.evals++
	if !r.ProbesReused && !r.ProbesSkipped {
		s.probeRuns++
	}
	if !r.BackendsReused && r.Up != nil {
		s.statReads++
	}
	if a.vips[v.Name] != s || s.downs != downs {
		// Reloaded away, or withdrawn by an event while this ran: the
		// result predates what is known now.
		changing = s.tracker.Changing() || s.alert
		a.mu.Unlock()
		return changing
	}
	if r.Unknown {
		// Only servers waiting for their first check (HAProxy's INI
		// right after a reload) kept it from passing: keep the previous
		// decision instead of counting a failure.
		a.unsettleLocked(s)
		a.mu.Unlock()
		return true
	}
	s.last = r
	var changed bool
	if s.resume && r.OK {
		s.tracker.Resume()
		a.log.Info("vip announced before the agent started and healthy now: kept", "vip", v.Name)
	} else {
		changed = s.tracker.Observe(r.OK)
	}
	s.resume = false
	a.settleLocked(s, r)
	if changed {
		s.since = now
		a.log.Info("vip health changed", "vip", v.Name, "healthy", s.tracker.Healthy(), "reasons", r.Reasons)
	}
	if m := a.cfg.Metrics; m != nil && !changed && !r.ProbesReused {
		m.ProbeLatency.WithLabelValues(v.Name).Set(r.ProbeLatency.Seconds())
	}
	changing = s.tracker.Changing() || s.alert
	a.mu.Unlock()
	if changed {
		a.publish(false, s)
	}
	return changing
}

// window is how many healthy, unchanged evaluations in a row make a VIP
// stable: its rise/fall window.
func (a *Agent) window() int { return max(a.cfg.Rise, a.cfg.Fall) }

// probeEvery is every how many evaluations a stable VIP's probes run.
func (a *Agent) probeEvery() int {
	return max(int((a.cfg.ProbeInterval+a.cfg.Interval/2)/a.cfg.Interval), 1)
}

// reuseProbesLocked returns what the next evaluation of s reuses instead
// of measuring, or nil when it must measure everything because s is not
// stable (healthy, nothing changing, for its window): the probes' outcome
// unless they are due, and, when HAProxy's state events are on, the
// servers up unless BackendInterval passed since they were read. a.mu is
// held.
func (a *Agent) reuseProbesLocked(s *vipState) *health.Reused {
	if !s.tracker.Healthy() || s.tracker.Changing() || s.alert || s.steady < a.window() {
		return nil
	}
	r := &health.Reused{}
	if ps := s.vip.Probes; s.sinceProbe+1 < a.probeEvery() {
		probed := s.probed
		r.Probed = &probed
	} else if len(ps) > 1 && len(s.probed.Reasons) == 0 {
		// All its probes passed when it became stable: one of them in
		// turn is the end-to-end check of its HAProxy (the listeners
		// themselves are in every listing).
		i := s.turn % len(ps)
		s.turn++
		r.Probes = ps[i : i+1]
	}
	if a.cfg.BackendEvents != nil && s.vip.Events && time.Since(s.upAt) < a.cfg.BackendInterval {
		// Any change of a server's state arrives as an event, which
		// unsettles the VIP (backendEvent).
		r.Up = s.up
	}
	if r.Probed == nil && r.Probes == nil && r.Up == nil {
		return nil
	}
	return r
}

// settleLocked records what evaluation r says about the VIP's stability,
// after the tracker observed it. a.mu is held.
func (a *Agent) settleLocked(s *vipState, r health.Result) {
	switch {
	case r.ProbesReused:
		s.sinceProbe++
	case !r.ProbesSkipped:
		s.probed, s.sinceProbe = r.Probed, 0
	}
	moved := r.Up != nil && s.up != nil && !maps.Equal(r.Up, s.up)
	if r.Up != nil && !r.BackendsReused {
		s.up, s.upAt = r.Up, time.Now()
	}
	healthy := s.tracker.Healthy()
	switch {
	case moved:
		// A server went down or came back: probe fully at once even
		// though the VIP stays healthy.
		a.unsettleLocked(s)
	case healthy && r.OK && !s.tracker.Changing():
		s.steady = min(s.steady+1, a.window())
	default:
		s.steady = 0
	}
	if s.steady >= a.window() || !healthy && !s.tracker.Changing() {
		// Stable, or settled unhealthy (probed at every evaluation and
		// at Interval, as before).
		s.alert = false
	}
}

// unsettleLocked makes s unstable: its next evaluations probe fully, at
// FastInterval, until it is stable again. a.mu is held.
func (a *Agent) unsettleLocked(s *vipState) {
	s.steady, s.alert = 0, true
}

// listeners returns the listeners of the latest listing of the LB's
// listeners that are among expected (a VIP's), listing them when the
// socket watcher has not done so recently or not since notBefore. A failed
// listing gives an empty list (every expected listener then counts as
// missing). The result is never nil.
func (a *Agent) listeners(ctx context.Context, notBefore time.Time, expected []netip.AddrPort) []health.Listener {
	// The watcher lists every stallPeriod, every other one while the
	// accept queues are empty.
	p := a.stallPeriod()
	a.snapMu.Lock()
	fresh := !a.snapAt.IsZero() && a.snapAt.After(notBefore) &&
		time.Since(a.snapAt) < max(5*p/2, a.cfg.FastInterval/2)
	a.snapMu.Unlock()
	if !fresh {
		a.refreshListeners(ctx)
	}
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	out := make([]health.Listener, 0, len(expected))
	for _, ap := range expected {
		if l, ok := a.snapIdx[ap]; ok {
			out = append(out, l)
		}
	}
	return out
}

// refreshListeners lists the listeners once for every VIP. Concurrent
// callers share one listing.
func (a *Agent) refreshListeners(ctx context.Context) []health.Listener {
	start := time.Now()
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	if a.snapAt.After(start) {
		return a.snap // listed while this caller waited
	}
	l, err := a.cfg.Deps.Sockets.Listeners(ctx)
	if err != nil {
		if a.snapErr == nil {
			a.log.Warn("listing listeners", "err", err)
		}
		l = []health.Listener{}
	} else if l == nil {
		l = []health.Listener{}
	}
	idx := make(map[netip.AddrPort]health.Listener, len(l))
	for _, x := range l {
		if _, dup := idx[x.Addr]; !dup {
			idx[x.Addr] = x // the first of several, as a scan finds it
		}
	}
	a.snap, a.snapIdx, a.snapAt, a.snapErr = l, idx, time.Now(), err
	return l
}

// consume hands every event of ch to handle until ctx ends or ch closes:
// listener events (a VIP withdrawn at once when one of its listeners
// closes, its next evaluation pulled forward when one opens), HAProxy's
// state events and unit state changes. Each event costs a map lookup; no
// other VIP is looked at.
func consume[E any](ctx context.Context, ch <-chan E, handle func(E)) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			handle(ev)
		}
	}
}

// backendEvent reads the VIP's backends at once and withdraws it when one
// has too few servers up, and makes its next evaluation come at once:
// HAProxy's own checks (with their own fall count) decided that a server
// went down or came back, and the agent learns it without polling. The
// read runs beside the VIP's evaluation, which may be waiting for a probe
// that HAProxy holds while it retries the dead server. An event for an
// unknown VIP is ignored.
func (a *Agent) backendEvent(ev BackendEvent) {
	a.mu.Lock()
	s := a.vips[ev.VIP]
	read := false
	if s != nil {
		a.unsettleLocked(s)
		s.backendEvents++
		if m := a.cfg.Metrics; m != nil {
			m.StateEvents.WithLabelValues(ev.VIP).Inc()
		}
		read = !s.readingBackends && s.tracker.Healthy() && a.cfg.Deps.Backends != nil
		s.readingBackends = s.readingBackends || read
	}
	a.mu.Unlock()
	if s == nil {
		return
	}
	a.log.Debug("haproxy state event", "vip", ev.VIP, "event", ev.Text)
	if read {
		a.wg.Go(func() { a.readBackends(s) })
	}
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// readBackends withdraws s at once when its backends fail (not only for
// servers waiting for their first check).
func (a *Agent) readBackends(s *vipState) {
	a.mu.Lock()
	v, ctx := s.vip, a.runCtx
	a.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, a.cfg.EvalTimeout)
	reasons, unknown := health.CheckBackends(rctx, &v, a.cfg.Deps.Backends)
	cancel()
	a.mu.Lock()
	s.readingBackends = false
	changed := len(reasons) > 0 && !unknown && ctx.Err() == nil && a.vips[v.Name] == s &&
		a.downLocked(s, strings.Join(reasons, "; "))
	a.mu.Unlock()
	if changed {
		a.log.Warn("backend down, withdrawing", "vip", v.Name, "reasons", reasons)
		a.publish(false, s)
	}
}

// unitEvent withdraws a VIP whose unit left active, at once, and pulls the
// next evaluation of one whose unit became active forward (like a listener
// opening). A reload keeps the unit active ("reloading").
func (a *Agent) unitEvent(ev UnitEvent) {
	active := ev.State == "active" || ev.State == "reloading"
	a.mu.Lock()
	s := a.vips[ev.VIP]
	if s == nil {
		a.mu.Unlock()
		return
	}
	if active {
		a.unsettleLocked(s)
		a.mu.Unlock()
		select {
		case s.kick <- struct{}{}:
		default:
		}
		return
	}
	changed := a.downLocked(s, "unit "+ev.State)
	a.mu.Unlock()
	if changed {
		a.log.Warn("unit not active, withdrawing", "vip", ev.VIP, "state", ev.State)
		a.publish(false, s)
	}
}

// event handles one listener event.
func (a *Agent) event(ev ListenerEvent) {
	a.mu.Lock()
	hit := a.byAddr[ev.Addr]
	if ev.Up {
		for _, s := range hit {
			a.unsettleLocked(s)
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		a.mu.Unlock()
		return
	}
	var changed []*vipState
	for _, s := range hit {
		if a.downLocked(s, "listener "+ev.Addr.String()+" closed") {
			changed = append(changed, s)
			a.log.Warn("listener closed, withdrawing", "vip", s.vip.Name, "addr", ev.Addr)
		}
	}
	a.mu.Unlock()
	if len(changed) > 0 {
		a.publish(false, changed...)
	}
}

// downLocked marks a VIP unhealthy at once with reason; a.mu is held. It
// reports whether the VIP was healthy.
func (a *Agent) downLocked(s *vipState, reason string) bool {
	s.downs++
	s.resume = false
	// Unhealthy now, so probed at every evaluation until it rose and
	// is stable again; the evaluations keep their pace, as before.
	s.steady = 0
	if !s.tracker.Down() {
		return false
	}
	s.since = time.Now()
	s.last = health.Result{VIP: s.vip.Name, Reasons: []string{reason}}
	return true
}

// evaluations returns how many evaluations of the named VIP completed.
func (a *Agent) evaluations(vip string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.vips[vip]; s != nil {
		return s.evals
	}
	return 0
}

// desired returns the prefixes last published.
func (a *Agent) desired() []netip.Prefix {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.announced)
}

// publish requests the announcement of every healthy, undrained VIP; the
// announcer coalesces bursts into few BIRD reconfigures. force rebuilds
// every metric (after a reload); otherwise only those of the changed VIPs
// are set.
func (a *Agent) publish(force bool, changed ...*vipState) {
	a.mu.Lock()
	want := make([]netip.Prefix, 0, len(a.announced)+4)
	for _, vp := range a.prefixes {
		if vp.s.tracker.Healthy() && !a.drains.Drained(vp.s.vip.Name) {
			want = append(want, vp.p)
		}
	}
	same := a.published && slices.Equal(want, a.announced)
	if g, ok := a.cfg.Announcer.(GracefulShutdowner); ok && g.SetGracefulShutdown(a.drains.GracefulShutdown) {
		same = false
	}
	a.announced, a.published = want, true
	if force {
		a.updateMetrics()
	} else {
		for _, s := range changed {
			a.updateVIPMetrics(s)
		}
	}
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
	for _, s := range a.order {
		t := s.tracker
		vs := VIPStatus{Name: s.vip.Name, Healthy: t.Healthy(), Drained: a.drains.Drained(s.vip.Name),
			Reasons: s.last.Reasons, Transitions: t.Transitions,
			ProbeLatency: s.last.ProbeLatency.Seconds(), Since: s.since, Evaluations: s.evals,
			StateEvents: s.backendEvents}
		for _, ad := range s.vip.Addresses {
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
