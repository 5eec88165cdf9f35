// Package install is the transactional install of a bundle on a node:
// verify (nothing is written before), render for this node, validate, stage,
// write the intent record, apply the plan with an undo for every step,
// commit by swapping the `current` symlink, log. A failure anywhere leaves
// the node exactly at the previous release; a crash leaves an intent record
// from which the next lbctl command restores the last committed release.
package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// Verified is a bundle whose signature and contents were checked.
type Verified struct {
	Serial uint64
	Site   *model.Site
}

// Installer installs bundles on one node. Every field but Log and Now is
// required.
type Installer struct {
	Store *release.Store
	Host  apply.Host
	// Open verifies a bundle and returns its resolved model; it writes
	// nothing.
	Open func(bundle []byte) (*Verified, error)
	// Render computes this node's state from the resolved model (pure).
	Render func(site *model.Site, node *model.Node, serial uint64) (*plan.State, error)
	// Validate checks the configs of the VIPs a plan starts or reloads,
	// the BIRD config and the certificates they use, before anything
	// changes.
	Validate func(ctx context.Context, site *model.Site, next *plan.State, p *plan.Plan) error
	Log      *slog.Logger
	Now      func() time.Time
	// Progress, if set, is called before each step of an apply.
	Progress func(i, total int, op plan.Op)
}

// Options of one install.
type Options struct {
	// Node is this node's host name in the bundle's node profiles.
	Node string
	// AllowDowngrade permits a serial lower than the current one.
	AllowDowngrade bool
	// Wait for another install to finish instead of failing at once.
	Wait bool
	// DryRun computes and returns the plan without changing anything.
	DryRun bool
	// Op names the operation in the install log ("install", "rollback").
	Op string
}

// Result says what an install did.
type Result struct {
	From     uint64
	HasFrom  bool
	To       uint64
	Plan     *plan.Plan
	NoOp     bool
	Duration time.Duration
}

// ErrDowngrade is returned for a bundle older than the current release.
var ErrDowngrade = errors.New("bundle is older than the current release (use --allow-downgrade)")

func (in *Installer) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

func (in *Installer) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Install installs the bundle given as bytes.
func (in *Installer) Install(ctx context.Context, bundle []byte, opt Options) (*Result, error) {
	start := in.now()
	if opt.Op == "" {
		opt.Op = "install"
	}
	v, err := in.Open(bundle)
	if err != nil {
		return nil, fmt.Errorf("verify bundle: %w", err)
	}
	node := v.Site.Node(opt.Node)
	if node == nil {
		var names []string
		for _, n := range v.Site.Nodes {
			names = append(names, n.Hostname)
		}
		return nil, fmt.Errorf("node %q has no profile in bundle %d (profiles: %s)", opt.Node, v.Serial, strings.Join(names, ", "))
	}
	next, err := in.Render(v.Site, node, v.Serial)
	if err != nil {
		return nil, fmt.Errorf("render for node %s: %w", opt.Node, err)
	}
	next.Serial = v.Serial

	unlock, err := in.Store.Lock(opt.Wait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := in.recover(ctx); err != nil {
		return nil, err
	}
	res := &Result{To: v.Serial}
	var cur *plan.State
	if serial, ok, err := in.Store.Current(); err != nil {
		return nil, err
	} else if ok {
		res.From, res.HasFrom = serial, true
		r, err := in.Store.Load(serial)
		if err != nil {
			return nil, fmt.Errorf("current release: %w", err)
		}
		cur = r.State
	}
	if res.HasFrom && v.Serial == res.From {
		res.NoOp, res.Plan = true, &plan.Plan{}
		return res, nil
	}
	if res.HasFrom && v.Serial < res.From && !opt.AllowDowngrade {
		return nil, fmt.Errorf("serial %d < current %d: %w", v.Serial, res.From, ErrDowngrade)
	}
	res.Plan = plan.Compute(cur, next)
	if err := in.Validate(ctx, v.Site, next, res.Plan); err != nil {
		return nil, fmt.Errorf("validate release %d: %w", v.Serial, err)
	}
	if opt.DryRun {
		return res, nil
	}

	if err := in.Store.Stage(&release.Release{Serial: v.Serial, Bundle: bundle, State: next}); err != nil {
		return nil, err
	}
	intent := release.Intent{Op: opt.Op, From: res.From, HasFrom: res.HasFrom, To: v.Serial, Started: start}
	if err := in.Store.WriteIntent(intent); err != nil {
		return nil, err
	}
	in.log().Info("applying release", "from", res.From, "to", v.Serial, "steps", len(res.Plan.Steps),
		"added", res.Plan.Added, "changed", res.Plan.Changed, "removed", res.Plan.Removed)
	var before func(int, plan.Step)
	if in.Progress != nil {
		before = func(i int, s plan.Step) { in.Progress(i, len(res.Plan.Steps), s.Do) }
	}
	if err := apply.Run(ctx, in.Host, res.Plan.Steps, before); err != nil {
		entry := release.LogEntry{Time: in.now(), Op: opt.Op, From: res.From, To: v.Serial, Error: err.Error(),
			Millis: in.now().Sub(start).Milliseconds(), Result: "rolled-back"}
		if !errors.Is(err, apply.ErrRolledBack) {
			// The undo failed too: keep the intent record so the next
			// command tries the restore again.
			entry.Result = "failed"
			_ = in.Store.Log(entry)
			return nil, err
		}
		var errs *multierror.Error
		errs = multierror.Append(errs, err)
		if cerr := in.Store.ClearIntent(); cerr != nil {
			errs = multierror.Append(errs, cerr)
		}
		if lerr := in.Store.Log(entry); lerr != nil {
			errs = multierror.Append(errs, lerr)
		}
		return nil, errs.ErrorOrNil()
	}
	if err := in.Store.Commit(v.Serial); err != nil {
		// The node runs the new release but it is not committed: the
		// intent record stays and the next command restores the old one.
		return nil, err
	}
	if err := in.Store.ClearIntent(); err != nil {
		return nil, err
	}
	res.Duration = in.now().Sub(start)
	var errs []error
	errs = append(errs, in.Store.Log(release.LogEntry{Time: in.now(), Op: opt.Op, From: res.From, To: v.Serial,
		Result: "committed", Millis: res.Duration.Milliseconds()}))
	errs = append(errs, in.Store.Prune(release.Keep))
	if err := errors.Join(errs...); err != nil {
		in.log().Warn("after commit", "err", err)
	}
	return res, nil
}

// Recover restores the last committed release if an install was
// interrupted. Every lbctl command that reads or changes the node and the
// agent call it first. It reports whether it had anything to do.
func (in *Installer) Recover(ctx context.Context, wait bool) (bool, error) {
	unlock, err := in.Store.Lock(wait)
	if err != nil {
		return false, err
	}
	defer unlock()
	pending, err := in.Store.ReadIntent()
	if err != nil || pending == nil {
		return false, err
	}
	return true, in.recover(ctx)
}

// recover does the work of Recover with the lock held.
func (in *Installer) recover(ctx context.Context) error {
	pending, err := in.Store.ReadIntent()
	if err != nil || pending == nil {
		return err
	}
	start := in.now()
	cur, ok, err := in.Store.Current()
	if err != nil {
		return err
	}
	if ok && cur == pending.To {
		// It crashed after the commit: the new release stands.
		return in.Store.ClearIntent()
	}
	to, err := in.Store.Load(pending.To)
	if err != nil {
		return fmt.Errorf("recover interrupted %s of release %d: %w", pending.Op, pending.To, err)
	}
	from := &plan.State{}
	if pending.HasFrom {
		r, err := in.Store.Load(pending.From)
		if err != nil {
			return fmt.Errorf("recover interrupted %s: release %d: %w", pending.Op, pending.From, err)
		}
		from = r.State
	}
	in.log().Warn("restoring the last committed release after an interrupted install", "from", pending.To, "to", pending.From)
	// Every operation is idempotent, so the way back from the new release
	// also fixes a node that reached only part of it.
	steps := plan.Compute(to.State, from).Steps
	if err := apply.Apply(ctx, in.Host, steps); err != nil {
		return fmt.Errorf("recover interrupted %s of release %d: %w", pending.Op, pending.To, err)
	}
	if err := in.Store.ClearIntent(); err != nil {
		return err
	}
	return in.Store.Log(release.LogEntry{Time: in.now(), Op: "recover", From: pending.To, To: pending.From,
		Result: "restored", Millis: in.now().Sub(start).Milliseconds()})
}

// Rollback re-installs a kept release (the one before the current one when
// serial is zero) through the same transactional path.
func (in *Installer) Rollback(ctx context.Context, serial uint64, opt Options) (*Result, error) {
	if serial == 0 {
		cur, ok, err := in.Store.Current()
		if err != nil {
			return nil, err
		}
		serials, err := in.Store.Serials()
		if err != nil {
			return nil, err
		}
		for i := len(serials) - 1; i >= 0; i-- {
			if ok && serials[i] < cur {
				serial = serials[i]
				break
			}
		}
		if serial == 0 {
			return nil, fmt.Errorf("rollback: no release older than the current one is kept (%v)", serials)
		}
	}
	r, err := in.Store.Load(serial)
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	opt.AllowDowngrade, opt.Op = true, "rollback"
	return in.Install(ctx, r.Bundle, opt)
}

// Releases lists kept releases, oldest first, with the current one marked.
func (in *Installer) Releases() (serials []uint64, current uint64, err error) {
	serials, err = in.Store.Serials()
	if err != nil {
		return nil, 0, err
	}
	current, _, err = in.Store.Current()
	return slices.Clip(serials), current, err
}
