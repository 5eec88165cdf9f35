package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/drift"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// Observer reads the node for a drift check.
type Observer func(ctx context.Context) (*drift.Observed, error)

// RepairResult says what a repair found and did.
type RepairResult struct {
	// Serial is the current release the node was put back to.
	Serial uint64
	// Drift is what the node differed in before (drift.Compare).
	Drift []string
	Plan  *plan.Plan
	// NoOp means there was no drift: nothing was done.
	NoOp bool
	// Remaining is the drift read back after the repair; empty when the
	// node matches its release. Not set by a dry run.
	Remaining []string
	Duration  time.Duration
}

// Repair puts the node back to its current release: it reads the node
// with observe, plans the repair of exactly what drifted (drift.Repair) and
// applies it through the same applier as an install, undoing the applied
// steps on any failure (the health gate of the repaired VIPs included).
// Afterwards it reads the node again and reports what still differs.
//
// It holds the install lock and restores the last committed release first
// when an install was interrupted. Of opt only Wait and DryRun count. A
// repair writes no intent record: it does not change the release, and a
// node left half repaired by a crash is no further from its release than
// before (the next repair finishes it). Every repair that changed
// something is in the install log (Op "repair"); a node without drift is
// not touched and not logged.
func (in *Installer) Repair(ctx context.Context, observe Observer, opt Options) (*RepairResult, error) {
	start := in.now()
	unlock, err := in.Store.Lock(opt.Wait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := in.recover(ctx); err != nil {
		return nil, err
	}
	serial, ok, err := in.Store.Current()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("repair: no release installed on this node")
	}
	r, err := in.Store.Load(serial)
	if err != nil {
		return nil, fmt.Errorf("repair: current release: %w", err)
	}
	res := &RepairResult{Serial: serial, Plan: &plan.Plan{}}
	// A partial observation would be repaired as drift (a unit list that
	// failed reads as every unit gone): nothing is done on one.
	obs, err := observe(ctx)
	if err != nil {
		return nil, fmt.Errorf("repair: reading the node: %w", err)
	}
	res.Drift = drift.Compare(r.State, obs)
	if len(res.Drift) == 0 {
		res.NoOp = true
		return res, nil
	}
	res.Plan = drift.Repair(r.State, obs)
	if opt.DryRun {
		return res, nil
	}

	in.log().Info("repairing drift", "release", serial, "drift", len(res.Drift), "steps", len(res.Plan.Steps),
		"changed", res.Plan.Changed, "removed", res.Plan.Removed)
	if err := apply.RunParallel(ctx, in.Host, res.Plan.Steps, in.Parallel, in.progress(len(res.Plan.Steps))); err != nil {
		entry := release.LogEntry{Time: in.now(), Op: "repair", From: serial, To: serial, Error: err.Error(),
			Millis: in.now().Sub(start).Milliseconds(), Result: "rolled-back"}
		if !errors.Is(err, apply.ErrRolledBack) {
			entry.Result = "failed"
		}
		return nil, errors.Join(err, in.Store.Log(entry))
	}
	res.Duration = in.now().Sub(start)
	if after, err := observe(ctx); err != nil {
		for _, l := range strings.Split(err.Error(), "\n") {
			res.Remaining = append(res.Remaining, "could not read: "+l)
		}
	} else {
		res.Remaining = drift.Compare(r.State, after)
	}
	entry := release.LogEntry{Time: in.now(), Op: "repair", From: serial, To: serial, Result: "repaired",
		Millis: res.Duration.Milliseconds()}
	if len(res.Remaining) > 0 {
		entry.Result, entry.Error = "incomplete", strings.Join(res.Remaining, "\n")
	}
	if err := in.Store.Log(entry); err != nil {
		in.log().Warn("after repair", "err", err)
	}
	return res, nil
}
