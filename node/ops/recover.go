package ops

import (
	"context"
	"errors"
	"log/slog"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
)

// Interrupted is an install that left its intent record behind.
type Interrupted struct {
	*release.Intent
	// Running is true when an install holds the lock: it is under way,
	// not interrupted.
	Running bool
}

// FindInterrupted reads the intent record of the store: nil when no
// install left one.
func FindInterrupted(store *release.Store) (*Interrupted, error) {
	p, err := store.ReadIntent()
	if err != nil || p == nil {
		return nil, err
	}
	unlock, err := store.Lock(false)
	if errors.Is(err, release.ErrLocked) {
		return &Interrupted{Intent: p, Running: true}, nil
	}
	if err != nil {
		return nil, err
	}
	unlock()
	return &Interrupted{Intent: p}, nil
}

// Recover restores the last committed release after an interrupted
// install (install.Installer.Recover: it waits for the lock, so an install
// under way finishes first and leaves nothing to restore).
func Recover(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	n, err := setup.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer n.Close()
	_, err = n.Installer.Recover(ctx, true)
	return err
}

// RecoverAtStart is Recover when an intent record was left behind (an
// install under way is waited for): the agent calls it when it starts.
func RecoverAtStart(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	store, err := ReadStore(cfg)
	if err != nil || store == nil {
		return err
	}
	p, err := FindInterrupted(store)
	if err != nil || p == nil {
		return err
	}
	return Recover(ctx, cfg, log)
}
