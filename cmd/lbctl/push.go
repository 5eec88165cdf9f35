package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/push"
	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

func init() {
	register(&cli.Command{
		Name:      "push",
		Usage:     "roll a bundle out over ssh: a canary node first, the others only if it is healthy, stopping at the first failure",
		ArgsUsage: "BUNDLE HOST...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ssh", Value: "ssh -o BatchMode=yes", Usage: "the ssh `COMMAND` (split on spaces)"},
			&cli.StringFlag{Name: "remote-lbctl", Value: "lbctl", Usage: "lbctl's `PATH` on the nodes"},
			&cli.StringFlag{Name: "remote-config", Usage: "the nodes' lbctl.yaml `FILE` (default: theirs)"},
			&clix.DurationFlag{Name: "health-timeout", Value: 60 * time.Second, Usage: "how long (`DURATION`) a node may take to report every VIP healthy"},
		},
		Action: runPush,
	})
}

func runPush(c *cli.Context) error {
	args, err := positional(c)
	if err != nil {
		return err
	}
	if len(args) < 2 {
		return cli.Exit("push: want the bundle and at least one host", 2)
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return cli.Exit("push: "+err.Error(), 1)
	}
	var extra []string
	if f := c.String("remote-config"); f != "" {
		extra = []string{"--config", f}
	}
	r := push.SSH{Command: strings.Fields(c.String("ssh")), Remote: c.String("remote-lbctl")}
	res, err := push.Push(c.Context, b, args[1:], r, push.Options{Args: extra, HealthTimeout: c.Duration("health-timeout"), Progress: c.App.ErrWriter})
	if res != nil {
		for _, n := range res.Nodes {
			fmt.Fprintf(c.App.Writer, "%-20s %s\n", n.Host, n.Status)
		}
	}
	if err != nil {
		return cli.Exit("push: "+err.Error(), 1)
	}
	return nil
}
