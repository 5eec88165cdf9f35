package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

func init() {
	register(
		&cli.Command{
			Name:      "completion",
			Usage:     "print the shell completion script for bash, zsh or fish",
			ArgsUsage: "bash|zsh|fish",
			Description: "bash: source it, or install it as /usr/share/bash-completion/completions/lbctl.\n" +
				"zsh: install it as _lbctl in a directory of $fpath (Debian: /usr/share/zsh/vendor-completions).\n" +
				"fish: install it as lbctl.fish in a directory of $fish_complete_path (Debian: /usr/share/fish/vendor_completions.d).\n" +
				"It completes commands, flags, the words an argument allows, bundle files (*" + clix.BundleExt + "), files and\n" +
				"directories, and on a node the VIPs of the installed release.",
			Action: runCompletion,
		},
		clix.Completer{VIPs: func(config string) ([]string, error) {
			if installedVIPs == nil {
				return nil, nil
			}
			return installedVIPs(config)
		}}.Command(),
		manCommand(),
	)
}

// installedVIPs lists the VIPs installed on this node for completion, with
// the node configuration FILE given ("" for $LBCTL_CONFIG or the default);
// nil where lbctl has no node side.
var installedVIPs func(config string) ([]string, error)

func runCompletion(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return clix.Usagef("completion: want one argument, bash, zsh or fish")
	}
	s, err := clix.Script(c.Args().First())
	if err != nil {
		return clix.Usagef("completion: %v", err)
	}
	_, err = io.WriteString(c.App.Writer, s)
	return err
}
