//go:build linux

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/node/setup"
)

func init() {
	register(doctorCommand())
}

func doctorCommand() *cli.Command {
	return &cli.Command{Name: "doctor", Category: "node", Usage: "check what this node needs: kernel features, eBPF, BIRD, HAProxy, certificates",
		Flags: []cli.Flag{configFlag, jsonFlag}, Action: runDoctor}
}

func runDoctor(c *cli.Context) error {
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return err
	}
	checks := ops.Doctor(c.Context, cfg)
	bad := 0
	for _, ch := range checks {
		if !ch.OK {
			bad++
		}
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, checks); err != nil {
			return err
		}
		// Like verify --json: the exit status still says whether all passed.
		if bad > 0 {
			return cli.Exit("", 1)
		}
		return nil
	}
	for _, ch := range checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(c.App.Writer, "%s %-22s %s\n", mark, ch.What, ch.Detail)
	}
	switch {
	case bad == 1:
		return cli.Exit("doctor: 1 problem", 1)
	case bad > 1:
		return cli.Exit(fmt.Sprintf("doctor: %d problems", bad), 1)
	}
	return nil
}
