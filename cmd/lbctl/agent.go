//go:build linux

package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/node/setup"
)

func init() {
	register(agentCommand())
}

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:     "agent",
		Usage:    "run the node's health agent: watch every VIP and keep BIRD announcing the healthy ones",
		Category: "node",
		Flags:    []cli.Flag{configFlag},
		Action:   runAgent,
	}
}

func runAgent(c *cli.Context) error {
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "agent")
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return ops.RunAgent(ctx, cfg, log)
}
