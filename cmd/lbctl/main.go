// Command lbctl builds, signs and installs intent-driven HAProxy load
// balancer bundles. main only wires the CLI together: each subcommand group
// lives in its own file and registers itself with register.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/urfave/cli/v2"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

var commands []*cli.Command

// register adds subcommands to the CLI; each command file calls it from init.
func register(cmds ...*cli.Command) { commands = append(commands, cmds...) }

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	return &cli.App{
		Name:                 "lbctl",
		Usage:                "intent-driven HAProxy load balancers on anycast",
		Version:              version,
		Commands:             commands,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		// main prints errors and exits, once.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func main() {
	if err := newApp().Run(os.Args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "lbctl:", msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "lbctl:", err)
		os.Exit(1)
	}
}
