//go:build linux

package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/node/release"
)

func init() {
	register(drainCommand(), undrainCommand())
}

func drainCommand() *cli.Command {
	return &cli.Command{Name: "drain", Category: "node", Usage: "withdraw a VIP's route (or all) while HAProxy keeps serving existing connections (through the peers' flow handoff), then wait up to drain_time for them to close",
		ArgsUsage: "VIP...|--all", Flags: []cli.Flag{configFlag, &cli.BoolFlag{Name: "all", Usage: "every VIP"},
			&clix.DurationFlag{Name: "wait", Value: -1, DefaultText: "drain_time from lbctl.yaml", Usage: "wait up to `DURATION` for open connections to close and report them (0: do not wait)"},
			&clix.DurationFlag{Name: "graceful-shutdown", Value: -1, DefaultText: "graceful_shutdown from lbctl.yaml", Usage: "with --all: announce every route with the GRACEFUL_SHUTDOWN community (RFC 8326, 65535:0) for `DURATION` before withdrawing them (0: withdraw at once)"}},
		Action: runDrain(true)}
}

func undrainCommand() *cli.Command {
	return &cli.Command{Name: "undrain", Category: "node", Usage: "announce drained VIPs again (when healthy)",
		ArgsUsage: "VIP...|--all", Flags: []cli.Flag{configFlag, &cli.BoolFlag{Name: "all", Usage: "every VIP"}}, Action: runDrain(false)}
}

// runDrain returns the action of drain (on) or undrain.
func runDrain(on bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		cfg, store, err := nodeStore(c)
		if err != nil {
			return err
		}
		req := ops.DrainRequest{On: on, All: c.Bool("all"), Names: c.Args().Slice()}
		if req.All == (len(req.Names) > 0) {
			return cli.Exit(c.Command.Name+": name VIPs or give --all", 2)
		}
		if err := gracefulShutdown(c, cfg, store, req); err != nil {
			return err
		}
		var unknown *ops.UnknownVIPError
		if err := ops.SetDrains(store, req); errors.As(err, &unknown) {
			return cli.Exit(c.Command.Name+": "+err.Error(), 1)
		} else if err != nil {
			return err
		}
		if err := announce(c, cfg, store); err != nil || !on {
			return err
		}
		wait := c.Duration("wait")
		if wait < 0 {
			wait = time.Duration(cfg.DrainTime)
		}
		start := time.Now()
		left, waited, err := ops.WaitDrained(c.Context, store, req.Names, wait)
		if err != nil || !waited {
			return err
		}
		printDrained(c, left, wait, time.Since(start))
		return nil
	}
}

// gracefulShutdown runs the graceful shutdown step of drain --all, when
// one is configured.
func gracefulShutdown(c *cli.Context, cfg *config.Config, store *release.Store, req ops.DrainRequest) error {
	gs := c.Duration("graceful-shutdown")
	if gs < 0 {
		gs = time.Duration(cfg.GracefulShutdown)
	}
	if !req.On || !req.All || gs <= 0 {
		return nil
	}
	fmt.Fprintf(c.App.Writer, "graceful shutdown: announcing every route with GRACEFUL_SHUTDOWN (65535:0) for %s, then withdrawing\n", gs)
	ann, err := ops.GracefulShutdown(c.Context, cfg, store, gs)
	if err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if !ann.ViaAgent {
		fmt.Fprintln(c.App.Writer, "agent not running: BIRD told directly")
	}
	return nil
}

// announce makes the drain state take effect (ops.Announce) and says how.
func announce(c *cli.Context, cfg *config.Config, store *release.Store) error {
	ann, err := ops.Announce(c.Context, cfg, store)
	switch {
	case err != nil:
		return err
	case ann.ViaAgent:
		fmt.Fprintf(c.App.Writer, "announced now: %s\n", strings.Join(ann.VIPs, " "))
	default:
		fmt.Fprintln(c.App.Writer, "agent not running: BIRD told directly")
	}
	return nil
}

// printDrained says how many connections each drained VIP still has.
func printDrained(c *cli.Context, left map[string]int, wait, took time.Duration) {
	if len(left) == 0 {
		fmt.Fprintf(c.App.Writer, "no open connection after %s\n", took.Round(time.Millisecond))
		return
	}
	for _, name := range slices.Sorted(maps.Keys(left)) {
		fmt.Fprintf(c.App.Writer, "%s: %d connections still open after %s; HAProxy keeps serving them (through the peers' flow handoff when the router sends them elsewhere)\n", name, left[name], wait)
	}
}
