//go:build linux

package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/systemd"
)

func init() {
	verifyDrift = runVerifyDrift
	installedVIPs = completeVIPs
	register(logsCommand(), vipCommand())
}

func logsCommand() *cli.Command {
	return &cli.Command{Name: "logs", Category: "node", Usage: "show the journal of a VIP's HAProxy unit (needs no network, no agent)",
		ArgsUsage: "VIP", Flags: []cli.Flag{configFlag,
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "show the last `N` lines"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow the journal"}},
		Action: runLogs}
}

func vipCommand() *cli.Command {
	return &cli.Command{Name: "vip", Category: "node", Usage: "act on one VIP's HAProxy unit",
		Subcommands: []*cli.Command{{Name: "restart", Usage: "restart a VIP's HAProxy (drops its connections: prefer a reinstall or reload)",
			ArgsUsage: "VIP", Flags: []cli.Flag{configFlag}, Action: runVIPRestart}}}
}

// vipArg is the one argument of a command on a VIP of the current release
// (flags may follow it: "lbctl logs VIP -n 20"); recover restores the last
// committed release first when an install was interrupted.
func vipArg(c *cli.Context, what string, recover bool) (*config.Config, string, error) {
	args, err := positional(c)
	if err != nil {
		return nil, "", err
	}
	if len(args) != 1 {
		return nil, "", cli.Exit(what+": want one argument, the VIP", 2)
	}
	vip := args[0]
	if err := systemd.ValidateInstance(vip); err != nil {
		return nil, "", cli.Exit(what+": "+err.Error(), 2)
	}
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return nil, "", err
	}
	if recover {
		if err := recoverFirst(c, cfg); err != nil {
			return nil, "", err
		}
	}
	var unknown *ops.UnknownVIPError
	if err := ops.CheckVIP(cfg, vip); errors.As(err, &unknown) {
		return nil, "", cli.Exit(err.Error(), 1)
	} else if err != nil {
		return nil, "", err
	}
	return cfg, vip, nil
}

func runLogs(c *cli.Context) error {
	_, vip, err := vipArg(c, "logs", false)
	if err != nil {
		return err
	}
	return ops.Journal(c.Context, vip, c.Int("lines"), c.Bool("follow"), c.App.Writer, c.App.ErrWriter)
}

func runVIPRestart(c *cli.Context) error {
	_, vip, err := vipArg(c, "vip restart", true)
	if err != nil {
		return err
	}
	st, err := ops.RestartVIP(c.Context, vip)
	var failed *ops.RestartError
	if errors.As(err, &failed) {
		return cli.Exit("vip restart: "+indent(err.Error()), 1)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s\n", st)
	return nil
}

// completeVIPs lists the VIPs of the installed release for completion.
func completeVIPs(path string) ([]string, error) {
	if path == "" {
		path = cmp.Or(os.Getenv("LBCTL_CONFIG"), config.DefaultPath)
	}
	cfg, err := setup.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	return ops.InstalledVIPs(cfg)
}

// runVerifyDrift compares the live node with its current release; exit 1
// on drift.
func runVerifyDrift(c *cli.Context) error {
	cfg, store, err := readStore(c)
	if err != nil {
		return err
	}
	if store == nil {
		msg := ops.NothingInstalled(cfg) + ": no release to compare the node with"
		if c.Bool("json") {
			writeJSON(c.App.Writer, map[string]any{"installed": false, "error": msg})
		}
		return cli.Exit("verify: "+msg, 1)
	}
	d, err := ops.Verify(c.Context, cfg, store)
	if errors.Is(err, ops.ErrNoCurrent) {
		return cli.Exit("verify: "+err.Error(), 1)
	} else if err != nil {
		return err
	}
	w := c.App.Writer
	switch {
	case c.Bool("json"):
		writeJSON(w, map[string]any{"serial": d.Serial, "drift": d.Diffs})
	case len(d.Diffs) == 0:
		fmt.Fprintf(w, "node %s matches release %d: nftables, addresses, units, configs, bird.conf, announcements\n", cfg.Node, d.Serial)
	default:
		fmt.Fprintf(w, "node %s drifted from release %d:\n", cfg.Node, d.Serial)
		for _, l := range d.Diffs {
			fmt.Fprintf(w, "  %s\n", l)
		}
		fmt.Fprintf(w, "`lbctl repair` puts it back to release %d (`lbctl repair --dry-run` shows how)\n", d.Serial)
	}
	if len(d.Diffs) > 0 {
		return cli.Exit("", 1)
	}
	return nil
}
