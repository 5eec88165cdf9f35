//go:build linux

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/setup"
)

func init() {
	register(&cli.Command{Name: "repair", Category: "node",
		Usage: "put the node back to its current release, fixing exactly the drift verify reports (needs no network, no agent)",
		Flags: []cli.Flag{configFlag, jsonFlag,
			&cli.BoolFlag{Name: "dry-run", Usage: "show the drift and the steps that would fix it; change nothing"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for a running install to finish instead of failing"}},
		Action: runRepair})
}

// repairOutput is what `lbctl repair --json` prints.
type repairOutput struct {
	Node      string   `json:"node"`
	Serial    uint64   `json:"serial"`
	Drift     []string `json:"drift"`
	Steps     []string `json:"steps"`
	DryRun    bool     `json:"dry_run"`
	Repaired  bool     `json:"repaired"`
	Remaining []string `json:"remaining"`
	Millis    int64    `json:"ms"`
}

func runRepair(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return cli.Exit("repair: takes no arguments", 2)
	}
	dry := c.Bool("dry-run")
	var (
		res  *install.RepairResult
		node string
	)
	err := changeNode(c, "repair", func(ctx context.Context, n *setup.Node) (err error) {
		node = n.Config.Node
		res, err = n.Installer.Repair(ctx, driftObserver(n.Config, n.Store, n.Units), install.Options{Wait: c.Bool("wait"), DryRun: dry})
		return err
	})
	if err != nil {
		return err
	}
	out := repairOutput{Node: node, Serial: res.Serial, Drift: res.Drift, Steps: []string{}, DryRun: dry,
		Repaired: !dry && !res.NoOp && len(res.Remaining) == 0, Remaining: res.Remaining, Millis: res.Duration.Milliseconds()}
	for _, s := range res.Plan.Steps {
		out.Steps = append(out.Steps, s.Do.String())
	}
	if out.Drift == nil {
		out.Drift = []string{}
	}
	if out.Remaining == nil {
		out.Remaining = []string{}
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
	} else {
		printRepair(c, out, res)
	}
	if len(res.Remaining) > 0 {
		return cli.Exit("repair: drift remains", 1)
	}
	return nil
}

func printRepair(c *cli.Context, out repairOutput, res *install.RepairResult) {
	w := c.App.Writer
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
