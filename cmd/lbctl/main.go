// Command lbctl builds, signs and installs intent-driven HAProxy load
// balancer bundles. main only wires the CLI together: each subcommand group
// lives in its own file and registers itself with register; the mechanics
// of the command line (flags after arguments, usage errors, completion,
// man pages) are internal/clix's.
package main

import (
	"os"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

// version and commit are set by the linker (-X main.version=... -X
// main.commit=...).
var (
	version = "dev"
	commit  = ""
)

var commands []*cli.Command

// register adds subcommands to the CLI; each command file calls it from init.
func register(cmds ...*cli.Command) { commands = append(commands, cmds...) }

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	app := &cli.App{
		Name:     "lbctl",
		Usage:    "intent-driven HAProxy load balancers on anycast",
		Version:  version,
		Commands: commands,
		// main prints errors and exits, once.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	clix.Install(app)
	return app
}

func main() {
	os.Exit(clix.Main(newApp(), os.Args))
}
