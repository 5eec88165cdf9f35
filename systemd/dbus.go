package systemd

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// LogHintFunc returns a short excerpt of a unit's log for an error message,
// "" when nothing is known. pid is the process whose failure ended the job
// (an Exec command), 0 if unknown.
type LogHintFunc func(ctx context.Context, unit string, pid uint32) string

// Option configures NewDBus.
type Option func(*DBus)

// WithLogHint adds the unit's last log lines to job errors.
func WithLogHint(f LogHintFunc) Option { return func(d *DBus) { d.logHint = f } }

// JournalHint returns a LogHintFunc that reads the last lines the failed
// process (or else the unit) logged, with journalctl; HAProxy's reason for
// refusing a config is there. It first asks journald to sync, so that
// output the process wrote just before it exited is included.
func JournalHint(lines int) LogHintFunc {
	return func(ctx context.Context, unit string, pid uint32) string {
		_ = exec.CommandContext(ctx, "journalctl", "--sync").Run()
		args := []string{"--no-pager", "-q", "-o", "cat", "-n", fmt.Sprint(lines)}
		if pid != 0 {
			args = append(args, fmt.Sprintf("_PID=%d", pid))
		} else {
			args = append(args, "-u", unit)
		}
		out, err := exec.CommandContext(ctx, "journalctl", args...).Output()
		if err != nil {
			return ""
		}
		var ls []string
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.Join(strings.Fields(l), " "); l != "" {
				ls = append(ls, l)
			}
		}
		return strings.Join(ls, " | ")
	}
}

// DBus is the Manager that talks to systemd over its private D-Bus socket
// (/run/systemd/private, root only, no dbus-daemon needed). The caller
// must run in systemd's PID namespace: systemd identifies peers by PID and
// drops connections from processes it cannot see.
type DBus struct {
	conn    *sdbus.Conn
	logHint LogHintFunc
}

var _ Manager = (*DBus)(nil)

// NewDBus connects to systemd.
func NewDBus(ctx context.Context, opts ...Option) (*DBus, error) {
	conn, err := sdbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("systemd: connect: %w", err)
	}
	d := &DBus{conn: conn}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// Close closes the connection.
func (d *DBus) Close() error {
	d.conn.Close()
	return nil
}

// DaemonReload implements Manager.
func (d *DBus) DaemonReload(ctx context.Context) error {
	if err := d.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// Start implements Manager.
func (d *DBus) Start(ctx context.Context, unit string) error {
	return d.job(ctx, "start", unit, d.conn.StartUnitContext)
}

// Stop implements Manager.
func (d *DBus) Stop(ctx context.Context, unit string) error {
	return d.job(ctx, "stop", unit, d.conn.StopUnitContext)
}

// Restart implements Manager.
func (d *DBus) Restart(ctx context.Context, unit string) error {
	return d.job(ctx, "restart", unit, d.conn.RestartUnitContext)
}

// Reload implements Manager. The reload is done when the service is
// running again, not when systemd's job ends: on systemd before 253 the job
// of a Type=notify service ends as soon as ExecReload (kill -USR2) exits,
// and HAProxy's master then says RELOADING=1 and, once its new worker is
// up, READY=1; until then the unit is "reloading" and the old worker
// serves. So after the job it waits for that: it returns once the unit is
// active after having been seen reloading, or has stayed active for
// reloadSettle (a service that said nothing, or said both already).
func (d *DBus) Reload(ctx context.Context, unit string) error {
	if err := d.job(ctx, "reload", unit, d.conn.ReloadUnitContext); err != nil {
		return err
	}
	return d.waitRunning(ctx, unit)
}

// reloadSettle is how long a unit must stay active after its reload job
// before Reload takes it as reloaded without having seen it reloading.
const reloadSettle = 300 * time.Millisecond

func (d *DBus) waitRunning(ctx context.Context, unit string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var seenReloading bool
	var activeSince time.Time
	for {
		p, err := d.conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
		if err != nil {
			return fmt.Errorf("reload %s: after the job: %w", unit, mapBusError(err))
		}
		switch state := str(p.Value.Value()); state {
		case "reloading":
			// Under way: wait for READY=1, however long it takes.
			seenReloading, activeSince = true, time.Time{}
		case "active":
			if seenReloading {
				return nil
			}
			if activeSince.IsZero() {
				activeSince = time.Now()
			} else if time.Since(activeSince) >= reloadSettle {
				return nil
			}
		default:
			return d.jobError(ctx, "reload", unit, "unit "+state+" after the reload job")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reload %s: waiting until it runs again: %w", unit, ctx.Err())
		case <-tick.C:
		}
	}
}

type jobFunc func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

// job queues a job and waits for its JobRemoved signal. go-systemd
// registers the channel before the call returns, so the result cannot be
// missed; the channel is buffered so a late result after ctx ends does not
// block go-systemd's dispatcher.
func (d *DBus) job(ctx context.Context, op, unit string, call jobFunc) error {
	ch := make(chan string, 1)
	if _, err := call(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", op, unit, mapBusError(err))
	}
	select {
	case result := <-ch:
		if result == "done" {
			return nil
		}
		return d.jobError(ctx, op, unit, result)
	case <-ctx.Done():
		return fmt.Errorf("%s %s: waiting for job: %w", op, unit, ctx.Err())
	}
}

func (d *DBus) jobError(ctx context.Context, op, unit, result string) error {
	e := &JobError{Op: op, Unit: unit, Result: result}
	var pid uint32
	if st, props, err := d.state(ctx, unit); err == nil {
		e.State = &st
		e.Hint, pid = failedExec(op, props)
	}
	if d.logHint != nil {
		if h := d.logHint(ctx, unit, pid); h != "" {
			if e.Hint != "" {
				e.Hint += "; "
			}
			e.Hint += "log: " + h
		}
	}
	return e
}

// mapBusError adds lbctl's sentinel errors to systemd's D-Bus errors.
func mapBusError(err error) error {
	var be godbus.Error
	if !errors.As(err, &be) {
		var pbe *godbus.Error
		if !errors.As(err, &pbe) {
			return err
		}
		be = *pbe
	}
	switch be.Name {
	case "org.freedesktop.systemd1.NoSuchUnit":
		return fmt.Errorf("%w: %w", ErrUnitNotFound, err)
	case "org.freedesktop.systemd1.UnitInactive":
		return fmt.Errorf("%w: %w", ErrNotActive, err)
	}
	return err
}

// ActiveState returns the unit's ActiveState ("active", "reloading",
// "inactive", ...) with one property read: State reads every property of
// the unit and of its service, which systemd (one thread for every
// client) answers far more slowly when an install's health gate asks for
// hundreds of units at once.
func (d *DBus) ActiveState(ctx context.Context, unit string) (string, error) {
	p, err := d.conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return "", fmt.Errorf("state %s: %w", unit, mapBusError(err))
	}
	return str(p.Value.Value()), nil
}

// State implements Manager.
func (d *DBus) State(ctx context.Context, unit string) (UnitState, error) {
	st, _, err := d.state(ctx, unit)
	return st, err
}

func (d *DBus) state(ctx context.Context, unit string) (UnitState, map[string]any, error) {
	up, err := d.conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return UnitState{}, nil, fmt.Errorf("state %s: %w", unit, mapBusError(err))
	}
	st := UnitState{
		Name:        unit,
		LoadState:   str(up["LoadState"]),
		ActiveState: str(up["ActiveState"]),
		SubState:    str(up["SubState"]),
	}
	if !strings.HasSuffix(unit, ".service") || st.LoadState != "loaded" {
		return st, nil, nil
	}
	sp, err := d.conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return st, nil, fmt.Errorf("state %s: %w", unit, mapBusError(err))
	}
	st.Result = str(sp["Result"])
	st.MainPID, _ = sp["MainPID"].(uint32)
	st.NRestarts, _ = sp["NRestarts"].(uint32)
	st.ExecMainStatus, _ = sp["ExecMainStatus"].(int32)
	st.StatusText = str(sp["StatusText"])
	return st, sp, nil
}

// List implements Manager.
func (d *DBus) List(ctx context.Context, pattern string) ([]UnitState, error) {
	units, err := d.conn.ListUnitsByPatternsContext(ctx, nil, []string{pattern})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", pattern, err)
	}
	out := make([]UnitState, 0, len(units))
	var errs []error
	for _, u := range units {
		st, _, err := d.state(ctx, u.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b UnitState) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// failedExec names the Exec command of op that failed, from the service's
// Exec* properties (a(sasbttttuii): path, argv, ignore, start, start
// monotonic, exit, exit monotonic, pid, code, status), and its PID.
func failedExec(op string, props map[string]any) (string, uint32) {
	lists := []string{"ExecStartPre", "ExecStart", "ExecStartPost"}
	switch op {
	case "reload":
		lists = []string{"ExecReload"}
	case "stop":
		lists = []string{"ExecStop", "ExecStopPost"}
	}
	for _, l := range lists {
		cmds, ok := props[l].([][]any)
		if !ok {
			continue
		}
		for _, c := range cmds {
			if len(c) < 10 {
				continue
			}
			argv, _ := c[1].([]string)
			exited, _ := c[5].(uint64)
			pid, _ := c[7].(uint32)
			code, _ := c[8].(int32)
			status, _ := c[9].(int32)
			// code is a CLD_* value: 1 exited, 2 killed, 3 dumped.
			if exited == 0 || (code == 1 && status == 0) {
				continue
			}
			how := fmt.Sprintf("exited with status %d", status)
			if code != 1 {
				how = fmt.Sprintf("killed by signal %d", status)
			}
			return fmt.Sprintf("%s %s %s", l, strings.Join(argv, " "), how), pid
		}
	}
	return "", 0
}
