//go:build linux

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/node/servers"
)

func init() {
	register(serverCommand())
}

func serverCommand() *cli.Command {
	return &cli.Command{Name: "server", Category: "node",
		Usage: "take a backend server out of service on this node, or back in, in every VIP using it (survives reloads, restarts and installs)",
		Subcommands: []*cli.Command{
			{Name: "drain", Usage: "no new sessions to SERVER; existing ones finish", ArgsUsage: "SERVER", Flags: serverFlags(true), Action: runServer(servers.Drain)},
			{Name: "disable", Usage: "no traffic at all to SERVER (HAProxy maintenance)", ArgsUsage: "SERVER", Flags: serverFlags(true), Action: runServer(servers.Maint)},
			{Name: "enable", Usage: "SERVER takes traffic again", ArgsUsage: "SERVER", Flags: serverFlags(false), Action: runServer("ready")},
		}}
}

func serverFlags(force bool) []cli.Flag {
	f := []cli.Flag{configFlag, &cli.StringFlag{Name: "vip", Usage: "only in this `VIP` (default: every VIP using the server)"}}
	if force {
		f = append(f, &cli.BoolFlag{Name: "force", Usage: "even when a backend would keep fewer servers up than its min_up"})
	}
	return f
}

func runServer(state string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cli.Exit(fmt.Sprintf("server %s: name one SERVER (a server name of the intents, e.g. typo3-web2)", c.Command.Name), 2)
		}
		cfg, store, err := nodeStore(c)
		if err != nil {
			return err
		}
		changes, err := ops.SetServer(c.Context, cfg, store, servers.Request{Server: c.Args().First(), VIP: c.String("vip"), State: state, Force: c.Bool("force")})
		for _, ch := range changes {
			fmt.Fprintln(c.App.Writer, ch)
		}
		if err != nil {
			return cli.Exit(err.Error(), 1)
		}
		if len(changes) == 0 {
			fmt.Fprintf(c.App.Writer, "%s: %s in every VIP using it (nothing left to change)\n", c.Args().First(), state)
		}
		return nil
	}
}
