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
	"time"

	"github.com/hashicorp/go-multierror"

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
	for i, s := range steps {
		if before != nil {
			before(i, s)
		}
		err := ctx.Err()
		if err == nil {
			err = Do(ctx, h, s.Do)
		}
		if err == nil {
			continue
		}
		cause := &StepError{Index: i, Op: s.Do, Err: err}
		if i == 0 && ctx.Err() != nil && err == ctx.Err() {
			return cause // nothing was applied
		}
		undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), UndoTimeout)
		defer cancel()
		var result *multierror.Error
		result = multierror.Append(result, cause)
		last := i
		if ctx.Err() != nil && err == ctx.Err() {
			last = i - 1 // step i never started
		}
		undoFailed := false
		for j := last; j >= 0; j-- {
			u := steps[j].Undo
			if u == nil {
				continue
			}
			if uerr := Do(undoCtx, h, *u); uerr != nil {
				undoFailed = true
				result = multierror.Append(result, fmt.Errorf("undo of step %d (%s): %w", j+1, *u, uerr))
			}
		}
		if !undoFailed {
			result = multierror.Append(result, ErrRolledBack)
		}
		return result.ErrorOrNil()
	}
	return nil
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
