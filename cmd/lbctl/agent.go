//go:build linux

package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/systemd"
)

func init() {
	register(&cli.Command{
		Name:     "agent",
		Usage:    "run the node's health agent: watch every VIP and keep BIRD announcing the healthy ones",
		Category: "node",
		Flags:    []cli.Flag{configFlag},
		Action:   runAgent,
	})
}

func runAgent(c *cli.Context) error {
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "agent")
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := recoverInterrupted(ctx, cfg, log); err != nil {
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
