package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/lbctl/lbctl/health"
)

// A hung HAProxy (SIGSTOP, a deadlock, a process stuck in the kernel) keeps
// its listening sockets, so no listener event fires and the kernel keeps
// completing handshakes into the accept queue. The socket watcher lists the
// listeners every StallInterval (that listing is also the one every VIP's
// evaluation reads) and looks for an accept queue that holds connections in
// two looks in a row without having drained in between: the backlog did not
// go down, so nothing accepted. A live HAProxy empties its queue within
// microseconds, but one at its maxconn stops accepting on purpose and its
// queue holds too; so a queue that did not drain is only a suspicion, which
// the VIP's runtime API settles: a hung HAProxy does not answer it within
// StallTimeout, a busy one does. Only then is the VIP withdrawn, at once
// (like a listener close), and it comes back after Rise passing
// evaluations.
//
// An idle hung HAProxy (nobody connecting) has an empty queue until the
// agent's own probe connects: the kernel completes the probe's handshake
// and the connection sits in the queue un-accepted, so the next two looks
// see it, whatever the probe's own timeout. Such a VIP is withdrawn within
// one evaluation interval plus three looks plus StallTimeout.

// watchSockets lists the listeners every StallInterval until ctx ends and
// withdraws VIPs whose HAProxy stopped accepting. Without Sockets it only
// keeps LastEvaluation fresh for the watchdog.
func (a *Agent) watchSockets(ctx context.Context) {
	// Look just before the ticks of the grid the stable VIPs' evaluations
	// use, in the same wake-up: a separate wake-up of the process costs
	// more than the listing. Looking first also keeps this tick's probe
	// connections, not yet made, out of the accept queues it compares.
	period := a.stallPeriod()
	timer := time.NewTimer(untilBefore(time.Now(), period, stallLead))
	defer timer.Stop()
	var prev map[netip.AddrPort]health.Listener
	// While no accept queue holds a connection, every other tick is
	// enough: a queue that starts to fill is seen within two periods and
	// then looked at every period (a hung HAProxy under traffic is
	// withdrawn within about two periods, one period and StallTimeout).
	// The listing is the watcher's largest cost, and an idle or lightly
	// loaded node's queues are empty at almost every look.
	quiet := false
	// Every VIP's HAProxy process state about twice a second, or every
	// StoppedBackstop when stop signals say when to look.
	every := max(int(stoppedInterval/period), 1)
	if a.cfg.StopSignals != nil {
		every = max(int(a.cfg.StoppedBackstop/period), 1)
	}
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(untilBefore(time.Now(), period, stallLead))
		a.mu.Lock()
		a.lastEval = time.Now()
		a.mu.Unlock()
		if a.cfg.Processes != nil && tick%every == 0 {
			a.checkStopped()
		}
		if a.cfg.Deps.Sockets == nil || (quiet && tick%2 == 1) {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, period)
		cur := a.refreshListeners(lctx)
		cancel()
		if a.cfg.Runtime == nil {
			continue
		}
		prev = a.checkQueues(ctx, prev, cur)
		quiet = true
		for _, l := range prev {
			quiet = quiet && l.Backlog == 0
		}
	}
}

// stallLead is how long before a grid tick the socket watcher looks.
const stallLead = 200 * time.Microsecond

// stallPeriod is StallInterval rounded to the nearest multiple of the
// steady grid (or of the slot, when StallInterval is finer than that
// grid), at least one slot: every look shares a wake-up with the
// evaluations due on that tick.
func (a *Agent) stallPeriod() time.Duration {
	g := a.steadySlot()
	if a.cfg.StallInterval < g {
		g = a.slot()
	}
	return max((a.cfg.StallInterval+g/2)/g, 1) * g
}

// untilBefore returns the wait from now until lead before the first
// multiple of period that is more than lead after now.
func untilBefore(now time.Time, period, lead time.Duration) time.Duration {
	return untilGrid(now, lead+1, period) - lead
}

// checkQueues compares the accept queues of the expected listeners with the
// previous look, starts a confirmation for each VIP with a queue that did
// not drain, and returns this look's listeners by address.
func (a *Agent) checkQueues(ctx context.Context, prev map[netip.AddrPort]health.Listener, cur []health.Listener) map[netip.AddrPort]health.Listener {
	now := make(map[netip.AddrPort]health.Listener, len(prev))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range cur {
		vs := a.byAddr[l.Addr]
		if len(vs) == 0 {
			continue
		}
		now[l.Addr] = l
		p, ok := prev[l.Addr]
		if !ok || l.Backlog == 0 || p.Backlog == 0 || l.Backlog < p.Backlog {
			continue
		}
		for _, s := range vs {
			if s.confirming || !s.tracker.Healthy() || time.Now().Before(s.calmUntil) {
				continue
			}
			s.confirming = true
			// Whatever the runtime API says, probe it fully again.
			a.unsettleLocked(s)
			select {
			case s.kick <- struct{}{}:
			default:
			}
			a.wg.Go(func() { a.confirmStall(ctx, s, l, p.Backlog) })
		}
	}
	return now
}

// confirmStall asks the VIP's runtime API whether HAProxy still answers and
// withdraws the VIP when it does not.
func (a *Agent) confirmStall(ctx context.Context, s *vipState, l health.Listener, before uint32) {
	a.mu.Lock()
	name := s.vip.Name
	a.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, a.cfg.StallTimeout)
	start := time.Now()
	err := a.cfg.Runtime.Responds(cctx, name)
	cancel()
	took := time.Since(start)
	a.mu.Lock()
	s.confirming = false
	hung := err != nil && ctx.Err() == nil && isHung(err)
	if !hung {
		// Busy (it answered), or the runtime API cannot tell (no
		// socket): look again in a while, not at every round.
		s.calmUntil = time.Now().Add(a.cfg.Interval)
		switch {
		case err == nil:
			a.log.Info("accept queue not draining, HAProxy answers: busy", "vip", name, "addr", l.Addr,
				"backlog", l.Backlog, "answered_in", took.Round(time.Microsecond))
		case ctx.Err() == nil:
			a.log.Warn("accept queue not draining, runtime API unusable", "vip", name, "addr", l.Addr, "err", err)
		}
		a.mu.Unlock()
		return
	}
	reason := fmt.Sprintf("HAProxy hung: accept queue of %s not drained (%d then %d waiting) and its runtime API did not answer in %v",
		l.Addr, before, l.Backlog, took.Round(time.Millisecond))
	changed := a.vips[name] == s && a.downLocked(s, reason)
	a.mu.Unlock()
	if changed {
		a.log.Warn("HAProxy hung, withdrawing", "vip", name, "addr", l.Addr, "backlog", l.Backlog, "err", err)
		a.publish(false, s)
	}
}

// stoppedInterval is about how often the socket watcher asks Processes
// whether each VIP's HAProxy is stopped: one read of /proc per VIP, so a
// SIGSTOPped HAProxy is withdrawn within about half a second whether
// clients connect or not.
const stoppedInterval = 450 * time.Millisecond

// stopLooks are the pauses between the looks at every VIP's processes
// after a stop signal: the target stops when it next runs, usually within
// microseconds, later when it was in an uninterruptible sleep.
var stopLooks = []time.Duration{time.Millisecond, 4 * time.Millisecond, 15 * time.Millisecond,
	80 * time.Millisecond, 400 * time.Millisecond}

// watchStops looks at every VIP's processes when a stop signal was sent
// (checkStopped), then again after each of stopLooks; a new signal starts
// the series again. A VIP withdrawn as stopped rises through its
// evaluations once continued.
func (a *Agent) watchStops(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	next := len(stopLooks)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-a.cfg.StopSignals:
			if !ok {
				return
			}
			// A continue signal is looked at too: cheap, and a stop
			// signal dropped behind it (a full channel) is not missed.
			a.checkStopped()
			next = 0
		case <-timer.C:
			a.checkStopped()
			next++
		}
		if next < len(stopLooks) {
			timer.Reset(stopLooks[next])
		}
	}
}

// checkStopped withdraws, at once, every healthy VIP whose HAProxy is
// stopped (every worker in state T): it serves nothing until continued.
// A busy HAProxy is running or sleeping, never stopped.
func (a *Agent) checkStopped() {
	a.mu.Lock()
	names := make([]string, 0, len(a.order))
	for _, s := range a.order {
		if s.tracker.Healthy() {
			names = append(names, s.vip.Name)
		}
	}
	a.mu.Unlock()
	for _, name := range names {
		workers, stopped := a.cfg.Processes.Stopped(name)
		if !stopped {
			continue
		}
		reason := fmt.Sprintf("HAProxy hung: stopped (process %v in state T)", workers)
		a.mu.Lock()
		s := a.vips[name]
		changed := s != nil && a.downLocked(s, reason)
		a.mu.Unlock()
		if changed {
			a.log.Warn("HAProxy stopped, withdrawing", "vip", name, "workers", workers)
			a.publish(false, s)
		}
	}
}

// isHung reports whether a runtime API error means that HAProxy holds the
// socket but does not serve it: no answer before the deadline, or a socket
// whose own backlog is full.
func isHung(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.EAGAIN)
}
