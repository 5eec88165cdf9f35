package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/systemd"
)

// CheckVIP checks that name is a VIP of the node's current release (an
// UnknownVIPError when it is not).
func CheckVIP(cfg *config.Config, name string) error {
	store, err := release.OpenExisting(cfg.StateDir)
	if err != nil {
		return err
	}
	cur, ok, err := store.Current()
	if err != nil || !ok {
		return errors.Join(err, errors.New("no release installed"))
	}
	r, err := store.Load(cur)
	if err != nil {
		return err
	}
	return checkVIPs(r, []string{name})
}

// RestartVIP restarts a VIP's HAProxy unit (its connections drop) and
// returns the unit's state afterwards. A failed restart is a
// *RestartError.
func RestartVIP(ctx context.Context, name string) (systemd.UnitState, error) {
	m, err := systemd.NewDBus(ctx, systemd.WithLogHint(systemd.JournalHint(10)))
	if err != nil {
		return systemd.UnitState{}, err
	}
	defer m.Close()
	if err := m.Restart(ctx, systemd.UnitName(name)); err != nil {
		return systemd.UnitState{}, &RestartError{err}
	}
	return m.State(ctx, systemd.UnitName(name))
}

// RestartError is a restart that systemd refused or that failed.
type RestartError struct{ Err error }

func (e *RestartError) Error() string { return e.Err.Error() }
func (e *RestartError) Unwrap() error { return e.Err }

// Journal writes the last lines of a VIP's HAProxy unit journal to stdout
// (journalctl's errors to stderr), following it when follow is set.
func Journal(ctx context.Context, name string, lines int, follow bool, stdout, stderr io.Writer) error {
	args := []string{"-u", systemd.UnitName(name), "-n", fmt.Sprint(lines), "--no-pager", "-o", "short-iso"}
	if follow {
		args = append(args, "-f")
	}
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}
