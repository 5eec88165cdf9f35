package systemd

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Manager drives systemd units. Every job method (Start, Stop, Restart,
// Reload) waits for the job's result and returns a *JobError unless the
// result is "done"; none of them sleeps or polls.
type Manager interface {
	// DaemonReload makes systemd re-read unit files and drop-ins; it returns
	// once systemd has finished reloading.
	DaemonReload(ctx context.Context) error
	Start(ctx context.Context, unit string) error
	// Stop of a loaded, inactive unit succeeds; of a unit systemd cannot
	// load it fails with ErrUnitNotFound.
	Stop(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	// Reload of an inactive unit fails (ErrNotActive).
	Reload(ctx context.Context, unit string) error
	// State returns the unit's current state; a unit systemd cannot load
	// has LoadState "not-found" and no error.
	State(ctx context.Context, unit string) (UnitState, error)
	// List returns the state of every loaded unit matching a glob pattern
	// ("lb-haproxy@*.service"), sorted by name.
	List(ctx context.Context, pattern string) ([]UnitState, error)
	Close() error
}

// UnitState is the part of a unit's state lbctl looks at.
type UnitState struct {
	Name        string
	LoadState   string // loaded, not-found, masked, error
	ActiveState string // active, reloading, inactive, failed, activating, deactivating
	SubState    string // running, dead, failed, auto-restart, start-pre, ...
	// Result is the service's last result ("success", "exit-code", ...).
	Result string
	// MainPID is the service's main process (HAProxy's master), 0 if none.
	MainPID uint32
	// NRestarts counts automatic restarts (Restart=on-failure).
	NRestarts uint32
	// ExecMainStatus is the main process's exit status after it exited.
	ExecMainStatus int32
	// StatusText is the service's last sd_notify STATUS=.
	StatusText string
}

// String formats the state on one line.
func (s UnitState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s/%s", s.Name, s.LoadState, s.ActiveState, s.SubState)
	if s.Result != "" {
		fmt.Fprintf(&b, " result=%s", s.Result)
	}
	fmt.Fprintf(&b, " pid=%d restarts=%d", s.MainPID, s.NRestarts)
	if s.ExecMainStatus != 0 {
		fmt.Fprintf(&b, " status=%d", s.ExecMainStatus)
	}
	if s.StatusText != "" {
		fmt.Fprintf(&b, " %q", s.StatusText)
	}
	return b.String()
}

// Active reports whether the unit is up (active or reloading).
func (s UnitState) Active() bool { return s.ActiveState == "active" || s.ActiveState == "reloading" }

var (
	// ErrUnitNotFound: systemd has no such unit (no unit file).
	ErrUnitNotFound = errors.New("unit not found")
	// ErrNotActive: the operation needs an active unit.
	ErrNotActive = errors.New("unit not active")
	// ErrJobFailed is matched (errors.Is) by every *JobError.
	ErrJobFailed = errors.New("job failed")
)

// JobError is a job whose result is not "done".
type JobError struct {
	Op     string // start, stop, restart, reload
	Unit   string
	Result string // failed, canceled, timeout, dependency, skipped, ...
	// State is the unit's state right after the job, if it could be read.
	State *UnitState
	// Hint says what failed: the failing Exec command and the unit's last
	// log lines when a log source was configured.
	Hint string
}

func (e *JobError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: job %s", e.Op, e.Unit, e.Result)
	if e.State != nil {
		fmt.Fprintf(&b, " (%s/%s", e.State.ActiveState, e.State.SubState)
		if e.State.Result != "" {
			fmt.Fprintf(&b, ", result %s", e.State.Result)
		}
		b.WriteString(")")
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, ": %s", e.Hint)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrJobFailed) true for every JobError, and
// errors.Is(err, ErrNotActive) true for a reload systemd refused because
// the unit is inactive (job result "invalid").
func (e *JobError) Is(target error) bool {
	return target == ErrJobFailed || (target == ErrNotActive && e.Op == "reload" && e.Result == "invalid")
}
