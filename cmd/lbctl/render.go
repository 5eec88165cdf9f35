package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/intent"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render"
	"github.com/lbctl/lbctl/bundle/render/backendfw"
	"github.com/lbctl/lbctl/bundle/render/icinga2"
	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

func init() {
	register(&cli.Command{
		Name:  "render",
		Usage: "render files for machines around the LB nodes (or a node's own files, for review)",
		Description: "Each subcommand resolves DIR and writes its files as the directory OUT, as a whole: OUT may be missing,\n" +
			"empty or written by lbctl render before (it holds .lbctl-render); a file no longer rendered is gone.",
		Subcommands: []*cli.Command{renderBackendFirewallCommand(), renderIcinga2Command(), renderNodeCommand()},
	})
}

func renderBackendFirewallCommand() *cli.Command {
	return &cli.Command{
		Name:      "backend-firewall",
		Usage:     "nftables snippets for the backend hosts and BIRD stanzas for the route reflectors",
		ArgsUsage: "DIR OUT",
		Flags:     resolveFlags(),
		Action: renderAction(2, func(site *model.Site, _ []string) ([]render.File, error) {
			return backendfw.Render(site)
		}),
	}
}

func renderIcinga2Command() *cli.Command {
	return &cli.Command{
		Name:      "icinga2",
		Usage:     "Icinga 2 hosts, services, users and notification rules for every VIP and backend",
		ArgsUsage: "DIR OUT",
		Flags:     resolveFlags(),
		Action: renderAction(2, func(site *model.Site, _ []string) ([]render.File, error) {
			return icinga2.Render(site, icinga2.Options{})
		}),
	}
}

func renderNodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "node",
		Usage:     "a node's HAProxy, BIRD and nftables files with the default node paths, for review",
		ArgsUsage: "DIR HOSTNAME OUT",
		Flags:     resolveFlags(),
		Action: renderAction(3, func(site *model.Site, args []string) ([]render.File, error) {
			n := site.Node(args[1])
			if n == nil {
				var names []string
				for _, x := range site.Nodes {
					names = append(names, x.Hostname)
				}
				return nil, cli.Exit(fmt.Sprintf("render node: no node profile %q (have %v)", args[1], names), 2)
			}
			return render.Node(site, n, render.Options{})
		}),
	}
}

// renderAction resolves DIR (the first of nargs arguments; the last is OUT),
// renders with fn and writes the files as the tree OUT, one line per file
// on stdout.
func renderAction(nargs int, fn func(*model.Site, []string) ([]render.File, error)) cli.ActionFunc {
	return func(c *cli.Context) error {
		args, err := positional(c)
		if err != nil {
			return err
		}
		if len(args) != nargs {
			return cli.Exit(fmt.Sprintf("render %s: want %s", c.Command.Name, c.Command.ArgsUsage), 2)
		}
		site, err := intent.Resolve(c.Context, args[0], intent.Options{Zone: c.String("zone"), DNS: c.String("dns")})
		if err != nil {
			return reportErrors(c.App.ErrWriter, err)
		}
		files, err := fn(site, args)
		if err != nil {
			var ec cli.ExitCoder
			if errors.As(err, &ec) {
				return err
			}
			return cli.Exit(err.Error(), 1)
		}
		return writeRendered(c, args[len(args)-1], files)
	}
}

// writeRendered makes out hold exactly the rendered files
// (clix.WriteTree: a new or empty directory, or one lbctl render wrote,
// replaced as a whole), one line per file on stdout.
func writeRendered(c *cli.Context, out string, files []render.File) error {
	tree := make([]clix.TreeFile, len(files))
	for i, f := range files {
		tree[i] = clix.TreeFile{Path: f.Path, Data: f.Data}
	}
	written, err := clix.WriteTree(out, tree)
	if err != nil {
		return cli.Exit(fmt.Sprintf("render %s: %v", c.Command.Name, err), 1)
	}
	for _, p := range written {
		fmt.Fprintln(c.App.Writer, p)
	}
	return nil
}
