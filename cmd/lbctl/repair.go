//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/node/setup"
)

func init() {
	register(repairCommand())
}

func repairCommand() *cli.Command {
	return &cli.Command{Name: "repair", Category: "node",
		Usage: "put the node back to its current release, fixing exactly the drift verify reports (needs no network, no agent)",
		Flags: []cli.Flag{configFlag, jsonFlag,
			&cli.BoolFlag{Name: "dry-run", Usage: "show the drift and the steps that would fix it; change nothing"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for a running install to finish instead of failing"}},
		Action: runRepair}
}

func runRepair(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return cli.Exit("repair: takes no arguments", 2)
	}
	var out *ops.Repair
	err := changeNode(c, "repair", func(ctx context.Context, n *setup.Node) (err error) {
		out, err = ops.RepairNode(ctx, n, install.Options{Wait: c.Bool("wait"), DryRun: c.Bool("dry-run")})
		return err
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
	} else {
		printRepair(c.App.Writer, out)
	}
	if len(out.Result.Remaining) > 0 {
		return cli.Exit("repair: drift remains", 1)
	}
	return nil
}

func printRepair(w io.Writer, out *ops.Repair) {
	res := out.Result
	if res.NoOp {
		fmt.Fprintf(w, "node %s matches release %d: nothing to repair\n", out.Node, out.Serial)
		return
	}
	fmt.Fprintf(w, "node %s drifted from release %d:\n", out.Node, out.Serial)
	for _, d := range out.Drift {
		fmt.Fprintf(w, "  %s\n", d)
	}
	p := res.Plan
	fmt.Fprintf(w, "repair: %d steps (VIPs repaired %v, removed %v, untouched %d):\n", len(p.Steps), p.Changed, p.Removed, len(p.Unchanged))
	for i, s := range out.Steps {
		fmt.Fprintf(w, "%3d. %s\n", i+1, s)
	}
	switch {
	case out.DryRun:
		fmt.Fprintln(w, "dry run: nothing changed")
	case len(res.Remaining) == 0:
		fmt.Fprintf(w, "repaired in %v: node %s matches release %d again\n", res.Duration.Round(time.Millisecond), out.Node, out.Serial)
	default:
		fmt.Fprintf(w, "after the repair (%v) node %s still differs from release %d:\n", res.Duration.Round(time.Millisecond), out.Node, out.Serial)
		for _, d := range res.Remaining {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
}
