package ops

import (
	"context"
	"log/slog"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/systemd"
)

// RunAgent runs the node's health agent until ctx ends (setup.RunAgent),
// after restoring the last committed release if an install was
// interrupted. Without systemd the agent runs with no unit state in
// health.
func RunAgent(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if err := RecoverAtStart(ctx, cfg, log); err != nil {
		log.Error("recovering an interrupted install", "err", err)
	}
	var units systemd.Manager
	if m, err := systemd.NewDBus(ctx); err != nil {
		log.Warn("systemd not reachable: unit state is not part of health", "err", err)
	} else {
		defer m.Close()
		units = m
	}
	return setup.RunAgent(ctx, cfg, units, log)
}
