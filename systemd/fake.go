package systemd

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
)

// Fake is an in-memory Manager. It knows the units whose files were
// installed (Install) once DaemonReload ran, keeps each unit's state and main PID, rejects impossible
// transitions like systemd does (start or stop of a unit it cannot load,
// reload of an inactive unit, start of a unit after its files changed
// without a daemon-reload) and prints its state as text.
//
// A reload keeps the main PID (HAProxy's master re-executes itself); a
// restart gives a new one. Fail makes the next job on a unit fail.
type Fake struct {
	mu      sync.Mutex
	files   map[string]bool // installed unit files (unit names)
	loaded  map[string]bool // unit files systemd has read
	dirty   bool
	units   map[string]*fakeUnit
	fail    map[string]string // unit -> op whose next job fails
	nextPID uint32
	Reloads int // daemon-reloads so far
}

type fakeUnit struct {
	active   bool
	failed   bool
	pid      uint32
	restarts uint32
	reloads  int
}

var _ Manager = (*Fake)(nil)

// NewFake returns a systemd with no units.
func NewFake() *Fake {
	return &Fake{files: map[string]bool{}, loaded: map[string]bool{}, units: map[string]*fakeUnit{},
		fail: map[string]string{}, nextPID: 1000}
}

// Install records that a unit file (a template such as
// "lb-haproxy@.service" or a plain unit) was written; systemd sees it after
// the next DaemonReload.
func (f *Fake) Install(unit string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[unit] = true
	f.dirty = true
}

// Uninstall records that a unit file was removed.
func (f *Fake) Uninstall(unit string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, unit)
	f.dirty = true
}

// Fail makes the next op ("start", "stop", "restart", "reload") on unit end
// with job result "failed", leaving the unit as systemd would: a failed
// start leaves it failed, a failed reload leaves it running unchanged.
func (f *Fake) Fail(unit, op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[unit] = op
}

// known reports whether systemd can load unit (directly or through its
// template). Callers hold mu.
func (f *Fake) known(unit string) bool {
	if f.loaded[unit] {
		return true
	}
	if i := strings.IndexByte(unit, '@'); i > 0 {
		if dot := strings.LastIndexByte(unit, '.'); dot > i {
			return f.loaded[unit[:i+1]+unit[dot:]]
		}
	}
	return false
}

// DaemonReload implements Manager.
func (f *Fake) DaemonReload(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loaded = map[string]bool{}
	for u := range f.files {
		f.loaded[u] = true
	}
	f.dirty = false
	f.Reloads++
	return nil
}

func (f *Fake) begin(ctx context.Context, op, unit string) (*fakeUnit, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, unit, err)
	}
	if !f.known(unit) {
		return nil, fmt.Errorf("%s %s: %w", op, unit, ErrUnitNotFound)
	}
	u := f.units[unit]
	if u == nil {
		u = &fakeUnit{}
		f.units[unit] = u
	}
	return u, nil
}

func (f *Fake) injected(op, unit string) bool {
	if f.fail[unit] == op {
		delete(f.fail, unit)
		return true
	}
	return false
}

func (f *Fake) jobErr(op, unit string) error {
	st := f.stateLocked(unit)
	return &JobError{Op: op, Unit: unit, Result: "failed", State: &st, Hint: "injected failure"}
}

func (f *Fake) start(u *fakeUnit) {
	f.nextPID++
	u.active, u.failed, u.pid, u.reloads = true, false, f.nextPID, 0
}

// Start implements Manager.
func (f *Fake) Start(ctx context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.begin(ctx, "start", unit)
	if err != nil {
		return err
	}
	if f.dirty {
		return fmt.Errorf("start %s: unit files changed on disk, daemon-reload needed", unit)
	}
	if u.active {
		return nil
	}
	if f.injected("start", unit) {
		u.failed = true
		return f.jobErr("start", unit)
	}
	f.start(u)
	return nil
}

// Stop implements Manager.
func (f *Fake) Stop(ctx context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.begin(ctx, "stop", unit)
	if err != nil {
		return err
	}
	if f.injected("stop", unit) {
		return f.jobErr("stop", unit)
	}
	u.active, u.failed, u.pid = false, false, 0
	return nil
}

// Restart implements Manager.
func (f *Fake) Restart(ctx context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.begin(ctx, "restart", unit)
	if err != nil {
		return err
	}
	if f.dirty {
		return fmt.Errorf("restart %s: unit files changed on disk, daemon-reload needed", unit)
	}
	if f.injected("restart", unit) {
		u.active, u.failed, u.pid = false, true, 0
		return f.jobErr("restart", unit)
	}
	f.start(u)
	return nil
}

// Reload implements Manager.
func (f *Fake) Reload(ctx context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.begin(ctx, "reload", unit)
	if err != nil {
		return err
	}
	if !u.active {
		return fmt.Errorf("reload %s: %w", unit, ErrNotActive)
	}
	if f.injected("reload", unit) {
		return f.jobErr("reload", unit)
	}
	u.reloads++
	return nil
}

// State implements Manager.
func (f *Fake) State(ctx context.Context, unit string) (UnitState, error) {
	if err := ctx.Err(); err != nil {
		return UnitState{}, fmt.Errorf("state %s: %w", unit, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stateLocked(unit), nil
}

func (f *Fake) stateLocked(unit string) UnitState {
	st := UnitState{Name: unit, LoadState: "not-found", ActiveState: "inactive", SubState: "dead"}
	if !f.known(unit) {
		return st
	}
	st.LoadState = "loaded"
	u := f.units[unit]
	if u == nil {
		return st
	}
	st.MainPID, st.NRestarts = u.pid, u.restarts
	switch {
	case u.active:
		st.ActiveState, st.SubState, st.Result = "active", "running", "success"
	case u.failed:
		st.ActiveState, st.SubState, st.Result = "failed", "failed", "exit-code"
	default:
		st.Result = "success"
	}
	return st
}

// List implements Manager: like systemd, it lists units that are loaded in
// memory (started at least once), not every instance a template allows.
func (f *Fake) List(ctx context.Context, pattern string) ([]UnitState, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", pattern, err)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("list %s: %w", pattern, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []UnitState
	for name := range f.units {
		if ok, _ := path.Match(pattern, name); ok && f.known(name) {
			out = append(out, f.stateLocked(name))
		}
	}
	slices.SortFunc(out, func(a, b UnitState) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Close implements Manager.
func (f *Fake) Close() error { return nil }

// String prints the fake's state, one line per unit file and unit, sorted,
// so tests can compare it with an expected text.
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for u := range f.files {
		l := "file " + u
		if !f.loaded[u] {
			l += " (not loaded)"
		}
		lines = append(lines, l)
	}
	for name, u := range f.units {
		if !f.known(name) && !u.active {
			continue
		}
		st := f.stateLocked(name)
		lines = append(lines, fmt.Sprintf("unit %s %s/%s pid=%d reloads=%d", name, st.ActiveState, st.SubState, st.MainPID, u.reloads))
	}
	slices.Sort(lines)
	if f.dirty {
		lines = append(lines, "daemon-reload needed")
	}
	return strings.Join(lines, "\n") + "\n"
}
