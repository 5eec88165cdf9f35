package health

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lbctl/lbctl/health/probe"
)

// Listener is a listening socket seen in the LB's network namespace.
type Listener struct {
	Addr netip.AddrPort
	// Backlog is the accept queue length, MaxBacklog its limit.
	Backlog, MaxBacklog uint32
}

// Units tells whether a VIP's unit is active.
type Units interface {
	Active(ctx context.Context, vip string) (bool, error)
}

// Sockets lists the listening TCP sockets of the LB's network namespace.
type Sockets interface {
	Listeners(ctx context.Context) ([]Listener, error)
}

// Backends counts the servers up per HAProxy backend of a VIP.
type Backends interface {
	UpCount(ctx context.Context, vip string) (map[string]int, error)
}

// StartingBackends is optionally implemented by Backends: besides the
// servers up it counts, per backend, the servers whose first check has not
// completed yet (HAProxy shows them UP with check_status INI right after a
// start or a reload). Those are neither up nor down.
type StartingBackends interface {
	UpAndStarting(ctx context.Context, vip string) (up, starting map[string]int, err error)
}

// Deps are what an evaluation reads. Any may be nil, which skips that part
// (and says so in the result).
type Deps struct {
	Units    Units
	Sockets  Sockets
	Backends Backends
	// ProbeTimeout bounds each active probe.
	ProbeTimeout time.Duration
}

// Result is one evaluation of one VIP.
type Result struct {
	VIP string
	OK  bool
	// Reasons say why the VIP is not healthy, one per failed check.
	Reasons []string
	// ProbeLatency is the slowest probe's duration.
	ProbeLatency time.Duration
	// Probed is the probes' outcome, also part of Reasons and
	// ProbeLatency; ProbesReused says it was passed in
	// (EvaluateReusing), not measured by this evaluation.
	Probed       Probed
	ProbesReused bool
	// BackendsReused says that Up was passed in (Reused.Up), not read.
	BackendsReused bool
	// ProbesSkipped says that the probes did not run because a cheaper
	// check had failed already (Probed is empty).
	ProbesSkipped bool
	// Up counts the servers up per backend (nil without Backends or when
	// they could not be read).
	Up map[string]int
	// Unknown is set when every check passed except a backend that has
	// too few servers up only because some still wait for their first
	// check (StartingBackends): the evaluation cannot tell, and the agent
	// keeps its previous decision. OK is false then.
	Unknown bool
}

// Err returns the reasons as an error, or nil when healthy.
func (r Result) Err() error {
	if r.OK {
		return nil
	}
	errs := make([]error, len(r.Reasons))
	for i, s := range r.Reasons {
		errs[i] = errors.New(s)
	}
	return fmt.Errorf("vip %s: not healthy: %w", r.VIP, errors.Join(errs...))
}

// Probed is the outcome of a VIP's active probes in one evaluation.
type Probed struct {
	// Reasons say why probes failed, one per failed probe.
	Reasons []string
	// Latency is the slowest probe's duration.
	Latency time.Duration
}

// Evaluate checks one VIP once. Listeners may be passed in when the caller
// listed them for all VIPs at once; nil lists them through d.Sockets.
func Evaluate(ctx context.Context, v *VIP, d Deps, listeners []Listener) Result {
	return EvaluateReusing(ctx, v, d, listeners, nil)
}

// Reused is what an evaluation takes from an earlier one instead of
// measuring it again (EvaluateReusing).
type Reused struct {
	// Probed, when not nil, stands for the active probes' outcome: they
	// do not run.
	Probed *Probed
	// Probes, when Probed is nil and Probes is not, are the only probes
	// that run (a stable VIP's turn of one of its listeners); the others
	// count as passed, as they did last time.
	Probes []Probe
	// Up, when not nil, stands for the servers up per backend: the caller
	// learns of any change from HAProxy's state events (VIP.Events) and
	// passes nil once one arrived.
	Up map[string]int
}

// EvaluateReusing is Evaluate with the active probes' outcome (when
// reuse.Probed is set) and the servers up (when reuse.Up is set) taken
// from reuse instead of measured again. The cheap checks come first: unit,
// listeners, then the backends (read afresh when a reused count would
// fail). When one of them fails the evaluation fails at once and the
// probes do not run (ProbesSkipped): a probe through an HAProxy whose
// backend just died can take its whole timeout (HAProxy retries the
// connection a second later), and the verdict must not wait for it. The
// result says what was reused (ProbesReused, BackendsReused).
func EvaluateReusing(ctx context.Context, v *VIP, d Deps, listeners []Listener, reuse *Reused) Result {
	r := Result{VIP: v.Name}
	// Reasons in the order the checks run: unit and listeners, backends.
	r.Reasons = unitAndListeners(ctx, v, d, listeners)
	var unknown int
	if len(r.Reasons) == 0 && d.Backends != nil && len(v.Backends) > 0 {
		var cached map[string]int
		if reuse != nil {
			cached = reuse.Up
		}
		var post []string
		post, unknown, r.Up = backends(ctx, v, d.Backends, cached)
		r.BackendsReused = cached != nil && len(post) == 0
		if cached != nil && len(post) > 0 {
			post, unknown, r.Up = backends(ctx, v, d.Backends, nil)
		}
		r.Reasons = post
	}
	switch {
	case len(r.Reasons) > 0:
		r.ProbesSkipped = true
	case reuse != nil && reuse.Probed != nil:
		r.Probed, r.ProbesReused = *reuse.Probed, true
	case reuse != nil && reuse.Probes != nil:
		r.Probed = runProbes(ctx, reuse.Probes, d.ProbeTimeout)
	default:
		r.Probed = runProbes(ctx, v.Probes, d.ProbeTimeout)
	}
	r.Reasons = slices.Concat(r.Reasons, r.Probed.Reasons)
	r.ProbeLatency = r.Probed.Latency
	r.OK = len(r.Reasons) == 0
	r.Unknown = unknown > 0 && unknown == len(r.Reasons)
	return r
}

// unitAndListeners checks a VIP's unit and listeners and returns the
// reasons they fail.
func unitAndListeners(ctx context.Context, v *VIP, d Deps, listeners []Listener) []string {
	var out []string
	fail := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if d.Units != nil {
		if ok, err := d.Units.Active(ctx, v.Name); err != nil {
			fail("unit: %v", err)
		} else if !ok {
			fail("unit not active")
		}
	}
	if d.Sockets == nil {
		return out
	}
	if listeners == nil {
		var err error
		if listeners, err = d.Sockets.Listeners(ctx); err != nil {
			fail("listeners: %v", err)
		}
	}
	for _, want := range Expected(v) {
		i := slices.IndexFunc(listeners, func(l Listener) bool { return l.Addr == want })
		switch {
		case i < 0:
			fail("no listener on %s", want)
		case listeners[i].MaxBacklog > 0 && listeners[i].Backlog >= listeners[i].MaxBacklog:
			fail("accept queue of %s full (%d/%d)", want, listeners[i].Backlog, listeners[i].MaxBacklog)
		}
	}
	return out
}

// CheckBackends reads a VIP's servers up through b and returns why its
// backends fail (nil when they pass) and whether every failure is only
// servers waiting for their first check.
func CheckBackends(ctx context.Context, v *VIP, b Backends) (reasons []string, unknown bool) {
	reasons, n, _ := backends(ctx, v, b, nil)
	return reasons, n > 0 && n == len(reasons)
}

// backends checks a VIP's backends against the servers up, read through b
// unless cached is not nil, and returns the reasons they fail, how many of
// those only wait for first checks, and the servers up.
func backends(ctx context.Context, v *VIP, b Backends, cached map[string]int) (reasons []string, unknown int, up map[string]int) {
	fail := func(format string, args ...any) { reasons = append(reasons, fmt.Sprintf(format, args...)) }
	var starting map[string]int
	var err error
	switch sb, ok := b.(StartingBackends); {
	case cached != nil:
		up = cached
	case ok:
		up, starting, err = sb.UpAndStarting(ctx, v.Name)
	default:
		up, err = b.UpCount(ctx, v.Name)
	}
	if err != nil {
		fail("backends: %v", err)
	}
	for _, be := range v.Backends {
		switch {
		case err != nil || up[be.Name] >= be.MinUp:
		case up[be.Name]+starting[be.Name] >= be.MinUp:
			unknown++
			fail("backend %s: %d of at least %d servers up, %d waiting for their first check", be.Name, up[be.Name], be.MinUp, starting[be.Name])
		default:
			fail("backend %s: %d of at least %d servers up", be.Name, up[be.Name], be.MinUp)
		}
	}
	return reasons, unknown, up
}

// Expected returns the listeners a VIP must have: one per probed address.
func Expected(v *VIP) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range v.Probes {
		if !slices.Contains(out, p.Addr) {
			out = append(out, p.Addr)
		}
	}
	return out
}

// runProbes runs a VIP's probes, concurrently when there are several.
func runProbes(ctx context.Context, probes []Probe, timeout time.Duration) Probed {
	if timeout == 0 {
		timeout = probe.DefaultTimeout
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out Probed
	)
	fail := func(format string, args ...any) { out.Reasons = append(out.Reasons, fmt.Sprintf(format, args...)) }
	for _, p := range probes {
		c, err := p.Checker()
		if err != nil {
			fail("%v", err)
			continue
		}
		check := func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			err := c.Check(pctx)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			out.Latency = max(out.Latency, took)
			if err != nil {
				fail("probe %v", err)
			}
		}
		if len(probes) == 1 {
			// Most VIPs have one probe: run it on the caller's
			// goroutine, whose stack has already grown, rather than a
			// new one whose stack grows on every dial (5.6 % of the
			// idle agent's CPU at 150 VIPs).
			check()
			break
		}
		wg.Go(check)
	}
	wg.Wait()
	return out
}

// Gate waits until every named VIP evaluates healthy rise times in a row,
// polling every interval, or until ctx ends; the error then lists the last
// reasons of every VIP that is not healthy, from the last evaluation that ran
// to completion (one cut short by the deadline only says that it timed out).
//
// Each round lists the listeners once for all VIPs and evaluates the VIPs
// not yet healthy at once, at most gateParallel at a time (each evaluation
// mostly waits), rather than one after the other, each listing every
// listener of the node again.
func Gate(ctx context.Context, vips []*VIP, d Deps, rise int, interval time.Duration) error {
	trackers := map[string]*Tracker{}
	last := map[string]Result{}
	for _, v := range vips {
		trackers[v.Name] = NewTracker(rise, 1)
	}
	for {
		var due []*VIP
		for _, v := range vips {
			if !trackers[v.Name].Healthy() {
				due = append(due, v)
			}
		}
		pending := 0
		for i, r := range gateRound(ctx, due, d) {
			v := due[i]
			if !r.OK && ctx.Err() != nil {
				// The deadline cut this evaluation short: its reasons
				// are the deadline's, not the VIP's. Report the last
				// complete one, if any.
				if _, ok := last[v.Name]; !ok {
					last[v.Name] = r
				}
				pending++
				continue
			}
			last[v.Name] = r
			if !trackers[v.Name].Observe(r.OK) {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var errs []error
			for _, v := range vips {
				if !trackers[v.Name].Healthy() {
					errs = append(errs, last[v.Name].Err())
				}
			}
			return fmt.Errorf("health gate: %w: %w", ctx.Err(), errors.Join(errs...))
		case <-time.After(interval):
		}
	}
}

// gateParallel bounds the evaluations a gate round runs at once (each
// mostly waits: a probe, the unit's state, HAProxy's stats socket).
const gateParallel = 8

// gateRound evaluates vips once, concurrently, with one listing of the
// listeners for all of them (when it fails each evaluation lists them
// itself and reports why). The results are in vips' order.
func gateRound(ctx context.Context, vips []*VIP, d Deps) []Result {
	var listeners []Listener
	if d.Sockets != nil && len(vips) > 1 {
		if ls, err := d.Sockets.Listeners(ctx); err == nil && ls != nil {
			listeners = ls
		}
	}
	out := make([]Result, len(vips))
	sem := make(chan struct{}, gateParallel)
	var wg sync.WaitGroup
	for i, v := range vips {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = Evaluate(ctx, v, d, listeners)
		})
	}
	wg.Wait()
	return out
}
