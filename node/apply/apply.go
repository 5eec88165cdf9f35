// Package apply runs the steps of a plan against the node and, when a step
// fails or the context is cancelled, runs the undo of every step applied so
// far (the failing one included, since it may have been applied in part) in
// reverse order. It decides nothing: the plan package decides what to do,
// the Host does it.
package apply

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/plan"
)

// Host is everything the applier does to a node. Every method is
// idempotent: doing what already holds succeeds and changes nothing.
type Host interface {
	// WriteVIP writes the VIP's config directory and unit drop-in.
	WriteVIP(ctx context.Context, v *plan.VIP) error
	// RemoveVIP removes the VIP's config directory and drop-in.
	RemoveVIP(ctx context.Context, name string) error
	// DaemonReload makes systemd read changed unit files and drop-ins.
	DaemonReload(ctx context.Context) error
	// StartUnit, ReloadUnit, RestartUnit and StopUnit act on the VIP's
	// HAProxy unit and wait for the job's result. StopUnit of a unit that
	// is not loaded succeeds.
	StartUnit(ctx context.Context, vip string) error
	ReloadUnit(ctx context.Context, vip string) error
	RestartUnit(ctx context.Context, vip string) error
	StopUnit(ctx context.Context, vip string) error
	AddAddrs(ctx context.Context, addrs []netip.Addr) error
	RemoveAddrs(ctx context.Context, addrs []netip.Addr) error
	// Firewall replaces the lbctl nftables table in one batch.
	Firewall(ctx context.Context, fw model.Firewall) error
	TProxy(ctx context.Context, on bool) error
	// Bird writes bird.conf and reconfigures BIRD.
	Bird(ctx context.Context, conf []byte) error
	// Announce sets the VIPs whose addresses BIRD may announce (drained
	// and unhealthy VIPs are still held back).
	Announce(ctx context.Context, vips []plan.VIP) error
	// HealthGate waits until every named VIP is healthy or ctx ends.
	HealthGate(ctx context.Context, vips []string) error
	// Drain lets connections to withdrawn VIPs finish.
	Drain(ctx context.Context, vips []string) error
}

// UndoTimeout bounds the undo of a failed apply, which runs even when the
// apply's own context was cancelled.
var UndoTimeout = 2 * time.Minute

// StepError says which step failed.
type StepError struct {
	Index int
	Op    plan.Op
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d (%s): %v", e.Index+1, e.Op, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrRolledBack marks an apply whose steps were undone.
var ErrRolledBack = errors.New("changes rolled back")

// Apply runs steps in order. On success it returns nil. On failure it undoes
// what it did and returns an error that wraps the cause (a *StepError),
// ErrRolledBack if every undo succeeded, and every undo failure.
func Apply(ctx context.Context, h Host, steps []plan.Step) error {
	return Run(ctx, h, steps, nil)
}

// Run is Apply with a callback before each step (for progress output).
func Run(ctx context.Context, h Host, steps []plan.Step, before func(i int, s plan.Step)) error {
	return RunParallel(ctx, h, steps, 1, before)
}

// RunParallel is Run with up to parallel unit jobs at once: a run of
// consecutive start, stop, restart and reload steps of distinct VIPs (what
// a plan emits for the VIPs it adds, changes or removes) is one batch whose
// steps run concurrently, since none depends on another; everything else
// runs one step after the other. When a step of a batch fails, no further
// step of the batch is started, the ones running finish, and the undo of
// every step started so far runs in reverse order, as in Run. parallel < 2
// is Run.
func RunParallel(ctx context.Context, h Host, steps []plan.Step, parallel int, before func(i int, s plan.Step)) error {
	for i := 0; i < len(steps); {
		j := i + 1
		if parallel > 1 {
			j = batchEnd(steps, i)
		}
		started, err := runBatch(ctx, h, steps[i:j], i, parallel, before)
		if err == nil {
			i = j
			continue
		}
		return undo(ctx, h, steps, i+started, err)
	}
	return nil
}

// unitStep reports whether a step only acts on its VIP's unit (and its
// VIP's files), so that it may run alongside those of other VIPs.
func unitStep(op plan.Op) bool {
	switch op.Kind {
	case plan.StartUnit, plan.StopUnit, plan.RestartUnit, plan.ReloadVIP:
		return op.VIP != nil
	}
	return false
}

// batchEnd returns the end of the batch of unit steps of distinct VIPs
// that starts at i (i+1 when steps[i] is not a unit step).
func batchEnd(steps []plan.Step, i int) int {
	if !unitStep(steps[i].Do) {
		return i + 1
	}
	seen := map[string]bool{}
	j := i
	for ; j < len(steps) && unitStep(steps[j].Do) && !seen[steps[j].Do.VIP.Name]; j++ {
		seen[steps[j].Do.VIP.Name] = true
	}
	return j
}

// runBatch runs the steps of a batch (offset is the index of its first
// step in the plan), up to parallel at once. It returns how many steps
// were started (a prefix of the batch) and the error: a *StepError for
// the first step that failed, holding every failure of the batch.
func runBatch(ctx context.Context, h Host, batch []plan.Step, offset, parallel int, before func(int, plan.Step)) (started int, err error) {
	if len(batch) == 1 {
		if before != nil {
			before(offset, batch[0])
		}
		err := ctx.Err()
		if err == nil {
			err = Do(ctx, h, batch[0].Do)
		}
		if err == nil {
			return 1, nil
		}
		if ctx.Err() != nil && err == ctx.Err() {
			return 0, &StepError{Index: offset, Op: batch[0].Do, Err: err} // never started
		}
		return 1, &StepError{Index: offset, Op: batch[0].Do, Err: err}
	}
	errs := make([]error, len(batch))
	var mu sync.Mutex
	stop := false
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for k := range batch {
		sem <- struct{}{}
		mu.Lock()
		halt := stop || ctx.Err() != nil
		mu.Unlock()
		if halt {
			<-sem
			break
		}
		if before != nil {
			before(offset+k, batch[k])
		}
		started++
		wg.Go(func() {
			defer func() { <-sem }()
			if e := Do(ctx, h, batch[k].Do); e != nil {
				mu.Lock()
				errs[k], stop = e, true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	failed := -1
	var all []error
	for k, e := range errs {
		if e == nil {
			continue
		}
		se := &StepError{Index: offset + k, Op: batch[k].Do, Err: e}
		if failed < 0 {
			failed = k
		}
		all = append(all, se)
	}
	if failed < 0 {
		if started < len(batch) {
			// Cancelled before every step started.
			return started, &StepError{Index: offset + started, Op: batch[started].Do, Err: ctx.Err()}
		}
		return started, nil
	}
	if len(all) == 1 {
		return started, all[0]
	}
	return started, &StepError{Index: offset + failed, Op: batch[failed].Do, Err: errors.Join(errs...)}
}

// undo runs, in reverse order, the undo of steps[:started] (every step
// that was started, the failing ones included, since they may have been
// applied in part) and returns the cause with the undo failures, or with
// ErrRolledBack.
func undo(ctx context.Context, h Host, steps []plan.Step, started int, cause error) error {
	if started == 0 && ctx.Err() != nil {
		return cause // nothing was applied
	}
	undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), UndoTimeout)
	defer cancel()
	errs := []error{cause}
	undoFailed := false
	for j := started - 1; j >= 0; j-- {
		u := steps[j].Undo
		if u == nil {
			continue
		}
		if uerr := Do(undoCtx, h, *u); uerr != nil {
			undoFailed = true
			errs = append(errs, fmt.Errorf("undo of step %d (%s): %w", j+1, *u, uerr))
		}
	}
	if !undoFailed {
		errs = append(errs, ErrRolledBack)
	}
	return errors.Join(errs...)
}

// Do performs one operation.
func Do(ctx context.Context, h Host, op plan.Op) error {
	switch op.Kind {
	case plan.Announce:
		return h.Announce(ctx, op.VIPs)
	case plan.Wait:
		return h.Drain(ctx, op.Names)
	case plan.VIPFiles:
		return vipFiles(ctx, h, op)
	case plan.StartUnit:
		return h.StartUnit(ctx, op.VIP.Name)
	case plan.StopUnit:
		return h.StopUnit(ctx, op.VIP.Name)
	case plan.RestartUnit:
		return h.RestartUnit(ctx, op.VIP.Name)
	case plan.StopVIP:
		return firstErr(
			func() error { return h.StopUnit(ctx, op.VIP.Name) },
			func() error { return h.RemoveVIP(ctx, op.VIP.Name) },
			func() error { return h.DaemonReload(ctx) },
		)
	case plan.StartVIP:
		return firstErr(
			func() error { return h.WriteVIP(ctx, op.VIP) },
			func() error { return h.DaemonReload(ctx) },
			func() error { return h.StartUnit(ctx, op.VIP.Name) },
		)
	case plan.ReloadVIP:
		return firstErr(
			func() error { return h.WriteVIP(ctx, op.VIP) },
			func() error { return h.ReloadUnit(ctx, op.VIP.Name) },
		)
	case plan.RestartVIP:
		return firstErr(
			func() error { return h.WriteVIP(ctx, op.VIP) },
			func() error { return h.DaemonReload(ctx) },
			func() error { return h.RestartUnit(ctx, op.VIP.Name) },
		)
	case plan.AddAddrs:
		return h.AddAddrs(ctx, op.Addrs)
	case plan.RemoveAddrs:
		return h.RemoveAddrs(ctx, op.Addrs)
	case plan.Firewall:
		return h.Firewall(ctx, *op.Firewall)
	case plan.TProxy:
		return h.TProxy(ctx, op.On)
	case plan.Bird:
		return h.Bird(ctx, op.Bird)
	case plan.HealthGate:
		return h.HealthGate(ctx, op.Names)
	}
	return fmt.Errorf("unknown operation %q", op.Kind)
}

// vipFiles writes and removes the files of a VIPFiles operation, every one
// tried (they are independent), then runs one daemon-reload so that systemd
// sees the drop-ins (and the template) as they are now, even after a file
// operation failed.
func vipFiles(ctx context.Context, h Host, op plan.Op) error {
	var errs []error
	for i := range op.VIPs {
		errs = append(errs, h.WriteVIP(ctx, &op.VIPs[i]))
	}
	for _, n := range op.Names {
		errs = append(errs, h.RemoveVIP(ctx, n))
	}
	errs = append(errs, h.DaemonReload(ctx))
	return errors.Join(errs...)
}

func firstErr(fs ...func() error) error {
	for _, f := range fs {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}
