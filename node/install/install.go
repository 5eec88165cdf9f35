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
	"strings"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// Verified is a bundle whose signature and contents were checked.
type Verified struct {
	Serial uint64
	Site   *model.Site
	// ManifestSHA256 is the SHA-256 of the signed manifest: which bundle
	// of that serial it is. Empty when unknown (no same-serial check).
	ManifestSHA256 string
	// Created is the signed build time; zero when unknown (no clock check).
	Created time.Time
}

// Replay is the node's anti-replay policy (lbctl.yaml). The zero value
// takes the defaults.
type Replay struct {
	// MinSerial is the lowest serial this node accepts, even with nothing
	// installed: an operator's pin for fresh or wiped nodes.
	MinSerial uint64
	// MaxSerialJump: a serial more than this above both the highest serial
	// installed here (or MinSerial) and the node's clock in Unix seconds
	// needs Options.AllowSerialJump. Default DefaultMaxSerialJump.
	MaxSerialJump uint64
	// MaxClockAhead: a bundle built more than this after the node's clock
	// needs Options.AllowSerialJump. Default DefaultMaxClockAhead.
	MaxClockAhead time.Duration
}

// Defaults of Replay.
const (
	// DefaultMaxSerialJump is 30 days of Unix-second serials (lbctl
	// build's default serial).
	DefaultMaxSerialJump = 30 * 24 * 3600
	// DefaultMaxClockAhead tolerates clocks a day apart.
	DefaultMaxClockAhead = 24 * time.Hour
)

// Installer installs bundles on one node. Every field but Log and Now is
// required.
type Installer struct {
	Store *release.Store
	Host  apply.Host
	// Open verifies a bundle and returns its resolved model; it writes
	// nothing.
	Open func(bundle []byte) (*Verified, error)
	// OpenKept verifies a release this node installed before, for a
	// rollback: like Open but without the expiry check (expiry bounds how
	// long a bundle may be delivered, not how long a node may go back to
	// what it ran). Default Open.
	OpenKept func(bundle []byte) (*Verified, error)
	// Replay is the anti-replay policy.
	Replay Replay
	// Site is the site this node belongs to (lbctl.yaml's site): a bundle
	// of another site is refused before anything is written. Empty: the
	// site pinned by the first install (release.SitePin), else that of
	// the current release; a node with neither takes any site and pins
	// it.
	Site string
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
	// Parallel is how many unit jobs (start, stop, restart, reload of
	// distinct VIPs) an apply runs at once; 0 or 1 runs them one after
	// the other.
	Parallel int
	// Committed, if set, tells the running agent that a release was
	// committed, so that what it takes from the committed release (the
	// flow handoff datapath: peers, VIP ports, backends) follows at once.
	// A failure is only warned about: the release is committed.
	Committed func(ctx context.Context) error
}

// Options of one install.
type Options struct {
	// Node is this node's host name in the bundle's node profiles.
	Node string
	// AllowDowngrade permits a serial lower than the current one, than the
	// highest one installed here or than Replay.MinSerial, and another
	// bundle with the highest serial installed here. It is logged.
	AllowDowngrade bool
	// AllowSerialJump permits a serial far above the highest installed
	// and the clock, or a build time far ahead of the clock (Replay). It
	// is logged.
	AllowSerialJump bool
	// Wait for another install to finish instead of failing at once.
	Wait bool
	// DryRun computes and returns the plan without changing anything.
	DryRun bool
	// Op names the operation in the install log ("install", "rollback").
	Op string

	// rollback: a kept release, verified with OpenKept and exempt from
	// the serial checks (the node installed it itself).
	rollback bool
}

// Result says what an install did.
type Result struct {
	From     uint64
	HasFrom  bool
	To       uint64
	Plan     *plan.Plan
	NoOp     bool
	Duration time.Duration
	// Phases is where the time went, in order (the phases reached):
	// verify (signature, manifest, decode), render, lock (and restore an
	// interrupted install), plan, validate (haproxy -c of the added and
	// changed VIPs, bird -p, certificates), stage, apply (the plan's
	// steps, health gate included), commit.
	Phases []Phase
}

// Phase is how long one part of an install took.
type Phase struct {
	Name string
	Took time.Duration
}

// phaseClock appends a Phase per mark, timed from the previous mark.
type phaseClock struct {
	now    func() time.Time
	last   time.Time
	phases []Phase
}

func (c *phaseClock) mark(name string) {
	t := c.now()
	c.phases = append(c.phases, Phase{Name: name, Took: t.Sub(c.last)})
	c.last = t
}

// Refusals of the anti-replay checks.
var (
	// ErrDowngrade: the serial is lower than the current release, the
	// highest serial installed here or the pinned minimum.
	ErrDowngrade = errors.New("bundle is older than the current release or the highest serial installed here (use --allow-downgrade)")
	// ErrSerialReused: another bundle than the one installed here carries
	// the highest serial installed here.
	ErrSerialReused = errors.New("serial reused by another bundle")
	// ErrSerialJump: the serial or the build time is far ahead.
	ErrSerialJump = errors.New("bundle is far ahead of this node (use --allow-serial-jump)")
	// ErrOtherSite: the bundle belongs to another site than this node.
	ErrOtherSite = errors.New("bundle of another site")
)

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

// Install installs the bundle given as bytes. Its steps, in order: verify
// and render for this node, the anti-replay checks, lock (and restore an
// interrupted install), read the current release, the anti-replay checks
// again under the lock, plan and validate, stage, write the intent record,
// apply (the plan's health gate included), commit.
func (in *Installer) Install(ctx context.Context, bundle []byte, opt Options) (*Result, error) {
	start := in.now()
	clock := &phaseClock{now: in.now, last: start}
	if opt.Op == "" {
		opt.Op = "install"
	}
	v, next, err := in.verifyAndRender(bundle, opt, clock)
	if err != nil {
		return nil, err
	}
	if err := in.checkSite(v); err != nil {
		return nil, err
	}
	// The anti-replay checks run once before the lock, so that a refusal
	// writes nothing at all (not even the lock file of a fresh node), and
	// again under it below.
	if !opt.rollback {
		if err := in.precheck(v, opt); err != nil {
			return nil, err
		}
	}
	unlock, err := in.lockAndRecover(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer unlock()
	clock.mark("lock")
	res, cur, err := in.current(v.Serial)
	if err != nil {
		return nil, err
	}
	defer func() { res.Phases = clock.phases }()
	if res.HasFrom && v.Serial == res.From {
		if !opt.rollback {
			if err := in.checkSameSerial(v); err != nil {
				return nil, err
			}
		}
		res.NoOp, res.Plan = true, &plan.Plan{}
		return res, nil
	}
	var overrides []string
	if !opt.rollback {
		if overrides, err = in.checkReplay(v, res, opt); err != nil {
			return nil, err
		}
	}
	res.Plan = plan.Compute(cur, next)
	clock.mark("plan")
	if err := in.Validate(ctx, v.Site, next, res.Plan); err != nil {
		return nil, fmt.Errorf("validate release %d: %w", v.Serial, err)
	}
	clock.mark("validate")
	if opt.DryRun {
		return res, nil
	}
	if err := in.stage(bundle, next, res, opt, start); err != nil {
		return nil, err
	}
	clock.mark("stage")
	if err := in.apply(ctx, res, opt, overrides, start); err != nil {
		return nil, err
	}
	clock.mark("apply")
	if err := in.commit(v, res, opt, overrides, start); err != nil {
		return nil, err
	}
	if in.Committed != nil {
		if err := in.Committed(ctx); err != nil {
			in.log().Warn("telling the agent about the commit", "err", err)
		}
	}
	clock.mark("commit")
	return res, nil
}

// progress is an apply's callback before each of total steps (nil without
// Progress).
func (in *Installer) progress(total int) func(int, plan.Step) {
	if in.Progress == nil {
		return nil
	}
	return func(i int, s plan.Step) { in.Progress(i, total, s.Do) }
}

// verifyAndRender verifies the bundle (a kept release for a rollback) and
// renders this node's state from it. It writes nothing.
func (in *Installer) verifyAndRender(bundle []byte, opt Options, clock *phaseClock) (*Verified, *plan.State, error) {
	open := in.Open
	if opt.rollback && in.OpenKept != nil {
		open = in.OpenKept
	}
	v, err := open(bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("verify bundle: %w", err)
	}
	clock.mark("verify")
	node := v.Site.Node(opt.Node)
	if node == nil {
		var names []string
		for _, n := range v.Site.Nodes {
			names = append(names, n.Hostname)
		}
		return nil, nil, fmt.Errorf("node %q has no profile in bundle %d (profiles: %s)", opt.Node, v.Serial, strings.Join(names, ", "))
	}
	next, err := in.Render(v.Site, node, v.Serial)
	if err != nil {
		return nil, nil, fmt.Errorf("render for node %s: %w", opt.Node, err)
	}
	next.Serial = v.Serial
	clock.mark("render")
	return v, next, nil
}

// lockAndRecover takes the install lock and restores the last committed
// release if an install was interrupted; a dry run creates no lock file and
// only reports a pending restore. The caller must call unlock.
func (in *Installer) lockAndRecover(ctx context.Context, opt Options) (unlock func(), err error) {
	lock := in.Store.Lock
	if opt.DryRun {
		lock = in.Store.LockIfExists // a dry run creates nothing
	}
	unlock, err = lock(opt.Wait)
	if err != nil {
		return nil, err
	}
	if opt.DryRun {
		// A dry run changes nothing, not even to recover: it says what is
		// pending instead.
		if p, err := in.Store.ReadIntent(); err != nil {
			unlock()
			return nil, err
		} else if p != nil {
			unlock()
			return nil, fmt.Errorf("an interrupted %s of release %d is pending: the next install, rollback or lbctl status restores release %d first", p.Op, p.To, p.From)
		}
	} else if err := in.recover(ctx); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// current starts the result of an install to serial with the committed
// release, and returns that release's state (nil when none).
func (in *Installer) current(serial uint64) (*Result, *plan.State, error) {
	res := &Result{To: serial}
	cur, ok, err := in.Store.Current()
	if err != nil || !ok {
		return res, nil, err
	}
	res.From, res.HasFrom = cur, true
	r, err := in.Store.Load(cur)
	if err != nil {
		return nil, nil, fmt.Errorf("current release: %w", err)
	}
	return res, r.State, nil
}

// stage writes the new release into the store and the intent record that
// makes the apply crash-safe.
func (in *Installer) stage(bundle []byte, next *plan.State, res *Result, opt Options, start time.Time) error {
	if err := in.Store.Stage(&release.Release{Serial: res.To, Bundle: bundle, State: next}); err != nil {
		return err
	}
	intent := release.Intent{Op: opt.Op, From: res.From, HasFrom: res.HasFrom, To: res.To, Started: start}
	return in.Store.WriteIntent(intent)
}

// apply runs the plan. On failure the steps are undone: when the undo
// succeeded the intent record is cleared; when it failed too the record
// stays so that the next command tries the restore again. Either way the
// install log says so.
func (in *Installer) apply(ctx context.Context, res *Result, opt Options, overrides []string, start time.Time) error {
	in.log().Info("applying release", "from", res.From, "to", res.To, "steps", len(res.Plan.Steps),
		"added", res.Plan.Added, "changed", res.Plan.Changed, "removed", res.Plan.Removed)
	if len(overrides) > 0 {
		in.log().Warn("installing with anti-replay checks overridden", "serial", res.To, "overrides", strings.Join(overrides, "; "))
	}
	err := apply.RunParallel(ctx, in.Host, res.Plan.Steps, in.Parallel, in.progress(len(res.Plan.Steps)))
	if err == nil {
		return nil
	}
	entry := release.LogEntry{Time: in.now(), Op: opt.Op, From: res.From, To: res.To, Error: err.Error(),
		Millis: in.now().Sub(start).Milliseconds(), Result: "rolled-back", Overrides: overrides}
	if !errors.Is(err, apply.ErrRolledBack) {
		entry.Result = "failed"
		_ = in.Store.Log(entry)
		return err
	}
	return errors.Join(err, in.Store.ClearIntent(), in.Store.Log(entry))
}

// commit swaps `current` to the new release, raises the highest serial
// record, clears the intent record, then logs and prunes (failures of
// those two are only warned about: the release is committed).
func (in *Installer) commit(v *Verified, res *Result, opt Options, overrides []string, start time.Time) error {
	if err := in.Store.Commit(v.Serial); err != nil {
		// The node runs the new release but it is not committed: the
		// intent record stays and the next command restores the old one.
		return err
	}
	// The record is raised before the intent is cleared: a crash in
	// between leaves the release committed and recorded.
	if err := in.Store.RaiseHighest(release.Highest{Serial: v.Serial, ManifestSHA256: v.ManifestSHA256, Time: in.now().UTC()}); err != nil {
		return err
	}
	// The site is pinned before the intent is cleared, like the record.
	if err := in.pinSite(v); err != nil {
		return err
	}
	if err := in.Store.ClearIntent(); err != nil {
		return err
	}
	res.Duration = in.now().Sub(start)
	err := errors.Join(
		in.Store.Log(release.LogEntry{Time: in.now(), Op: opt.Op, From: res.From, To: v.Serial,
			Result: "committed", Millis: res.Duration.Milliseconds(), Overrides: overrides}),
		in.Store.Prune(release.Keep))
	if err != nil {
		in.log().Warn("after commit", "err", err)
	}
	return nil
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
		// It crashed after the commit: the new release stands, and is
		// recorded as the highest serial if the crash came before that.
		in.raiseRecovered(cur)
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

// raiseRecovered raises the highest serial record to a release committed
// by an install that crashed before recording it. The current release
// still bounds installs when this fails, so a failure is only logged.
func (in *Installer) raiseRecovered(serial uint64) {
	open := in.OpenKept
	if open == nil {
		open = in.Open
	}
	r, err := in.Store.Load(serial)
	var v *Verified
	if err == nil {
		v, err = open(r.Bundle)
	}
	if err == nil {
		err = in.Store.RaiseHighest(release.Highest{Serial: serial, ManifestSHA256: v.ManifestSHA256, Time: in.now().UTC()})
	}
	if err != nil {
		in.log().Warn("recording the highest serial after an interrupted install", "serial", serial, "err", err)
	}
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
	opt.rollback, opt.Op = true, "rollback"
	return in.Install(ctx, r.Bundle, opt)
}

// checkSite refuses a bundle of another site than this node's. It runs
// before anything is written, for installs and rollbacks alike.
func (in *Installer) checkSite(v *Verified) error {
	want, from, err := in.NodeSite()
	if err != nil || want == "" || v.Site.Name == want {
		return err
	}
	return fmt.Errorf("bundle %d belongs to site %q, this node to site %q (%s); nothing was changed: %w",
		v.Serial, v.Site.Name, want, from, ErrOtherSite)
}

// pinSite records the committed release's site as the node's (a model
// without a name, which only tests build, pins nothing).
func (in *Installer) pinSite(v *Verified) error {
	if v.Site.Name == "" {
		return nil
	}
	return in.Store.PinSite(release.SitePin{Site: v.Site.Name, Serial: v.Serial, Time: in.now().UTC()})
}

// NodeSite is the site this node belongs to and where that comes from:
// the node configuration, the pin of the first install, or the current
// release (a node installed before sites were pinned). Empty when the node
// has none of them: its first install pins the bundle's site.
func (in *Installer) NodeSite() (site, from string, err error) {
	if in.Site != "" {
		return in.Site, "site in the node configuration", nil
	}
	pin, ok, err := in.Store.ReadSite()
	if err != nil || ok {
		return pin.Site, fmt.Sprintf("pinned by release %d in %s", pin.Serial, in.Store.SitePath()), err
	}
	cur, ok, err := in.Store.Current()
	if err != nil || !ok {
		return "", "", err
	}
	r, err := in.Store.Load(cur)
	if err != nil {
		return "", "", fmt.Errorf("the site of the current release: %w", err)
	}
	open := in.OpenKept
	if open == nil {
		open = in.Open
	}
	v, err := open(r.Bundle)
	if err != nil {
		return "", "", fmt.Errorf("the site of the current release %d: %w", cur, err)
	}
	return v.Site.Name, fmt.Sprintf("the site of the current release %d", cur), nil
}

// precheck is checkReplay without the lock.
func (in *Installer) precheck(v *Verified, opt Options) error {
	var res Result
	serial, ok, err := in.Store.Current()
	if err != nil {
		return err
	}
	res.From, res.HasFrom = serial, ok
	if ok && v.Serial == serial {
		return in.checkSameSerial(v) // else a no-op
	}
	_, err = in.checkReplay(v, &res, opt)
	return err
}

// checkSameSerial refuses a bundle with the current release's serial that
// is not the bundle recorded for it: installing it would be a no-op that
// hides that its content differs.
func (in *Installer) checkSameSerial(v *Verified) error {
	high, ok, err := in.Store.ReadHighest()
	if err != nil || !ok || high.Serial != v.Serial || high.ManifestSHA256 == "" || v.ManifestSHA256 == "" || high.ManifestSHA256 == v.ManifestSHA256 {
		return err
	}
	return fmt.Errorf("serial %d is installed here from another bundle (manifest sha256 %s, this one %s); build the change with a new serial: %w",
		v.Serial, high.ManifestSHA256, v.ManifestSHA256, ErrSerialReused)
}

// checkReplay applies the anti-replay policy to a bundle that is not the
// current release: no serial below the floor (the current release, the
// highest serial ever committed here, the pinned minimum), no other bundle
// with the highest serial, no serial or build time far ahead. It returns
// the checks the options overrode, for the log.
func (in *Installer) checkReplay(v *Verified, res *Result, opt Options) ([]string, error) {
	pol := in.Replay
	if pol.MaxSerialJump == 0 {
		pol.MaxSerialJump = DefaultMaxSerialJump
	}
	if pol.MaxClockAhead == 0 {
		pol.MaxClockAhead = DefaultMaxClockAhead
	}
	high, hasHigh, err := in.Store.ReadHighest()
	if err != nil {
		return nil, err
	}
	var overrides []string
	// The floor and what sets it, most telling first.
	type bound struct {
		serial uint64
		what   string
	}
	var floors []bound
	if res.HasFrom {
		floors = append(floors, bound{res.From, fmt.Sprintf("the current release %d", res.From)})
	}
	if hasHigh {
		floors = append(floors, bound{high.Serial, fmt.Sprintf("the highest serial installed here, %d (%s)", high.Serial, release.HighestName)})
	}
	if pol.MinSerial > 0 {
		floors = append(floors, bound{pol.MinSerial, fmt.Sprintf("min_serial %d of the node configuration", pol.MinSerial)})
	}
	var ref uint64
	for _, f := range floors {
		ref = max(ref, f.serial)
		if v.Serial >= f.serial {
			continue
		}
		msg := fmt.Sprintf("serial %d is lower than %s", v.Serial, f.what)
		if !opt.AllowDowngrade {
			return nil, fmt.Errorf("%s: %w", msg, ErrDowngrade)
		}
		overrides = append(overrides, "allow-downgrade: "+msg)
	}
	if hasHigh && v.Serial == high.Serial && high.ManifestSHA256 != "" && v.ManifestSHA256 != "" && v.ManifestSHA256 != high.ManifestSHA256 {
		msg := fmt.Sprintf("serial %d was installed here from another bundle (manifest sha256 %s, this one %s)", v.Serial, high.ManifestSHA256, v.ManifestSHA256)
		if !opt.AllowDowngrade {
			return nil, fmt.Errorf("%s (use --allow-downgrade): %w", msg, ErrSerialReused)
		}
		overrides = append(overrides, "allow-downgrade: "+msg)
	}
	now := in.now()
	clock := uint64(max(now.Unix(), 0))
	if v.Serial > ref && v.Serial-ref > pol.MaxSerialJump && v.Serial > clock && v.Serial-clock > pol.MaxSerialJump {
		msg := fmt.Sprintf("serial %d is more than %d above both %d (the highest known here) and the clock (%d)", v.Serial, pol.MaxSerialJump, ref, clock)
		if !opt.AllowSerialJump {
			return nil, fmt.Errorf("%s: %w", msg, ErrSerialJump)
		}
		overrides = append(overrides, "allow-serial-jump: "+msg)
	}
	if !v.Created.IsZero() && v.Created.Sub(now) > pol.MaxClockAhead {
		msg := fmt.Sprintf("bundle built at %s, more than %v after this node's clock (%s)", v.Created.UTC().Format(time.RFC3339), pol.MaxClockAhead, now.UTC().Format(time.RFC3339))
		if !opt.AllowSerialJump {
			return nil, fmt.Errorf("%s: %w", msg, ErrSerialJump)
		}
		overrides = append(overrides, "allow-serial-jump: "+msg)
	}
	return overrides, nil
}
