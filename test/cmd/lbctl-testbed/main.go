//go:build linux

// Command lbctl-testbed is the sandbox of lbctl: an anycast site in network
// namespaces on this machine (test/testbed), for `make demo`, the benchmarks
// and the end-to-end tests. It is a program of its own so that the lbctl
// shipped to LB nodes links no test harness; it installs that real lbctl on
// the sandbox's nodes (--lbctl, default: the lbctl beside this program).
//
// It also serves the sandbox's backends: `up` starts
// `lbctl-testbed serve-backend ARGS` inside every backend namespace.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/test/testbed"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

var dirFlag = &cli.StringFlag{Name: "dir", Value: testbed.DefaultDir, Usage: "testbed state `DIR`"}

func newApp() *cli.App {
	return &cli.App{
		Name:            "lbctl-testbed",
		Usage:           "the sandbox: an anycast site in network namespaces on this machine (root)",
		Version:         version,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		Commands: []*cli.Command{
			upCommand(), installCommand(),
			{
				Name:      "exec",
				Usage:     "run a command on an LB node (inside its systemd's namespaces) or in a namespace of the sandbox",
				ArgsUsage: "NODE|NAMESPACE COMMAND...",
				Flags:     []cli.Flag{dirFlag},
				Action:    runExec,
			},
			{
				Name:      "routes",
				Usage:     "print the router's VIP routes; with --wait, first wait until each PREFIX goes through every LB node",
				ArgsUsage: "[PREFIX...]",
				Flags: []cli.Flag{dirFlag,
					&cli.DurationFlag{Name: "wait", Usage: "wait up to this long for ECMP routes to every PREFIX"},
				},
				Action: runRoutes,
			},
			{
				Name:      "kill-haproxy",
				Usage:     "SIGKILL a VIP's HAProxy on a node and time the withdrawal of that node's route at the router",
				ArgsUsage: "NODE VIP",
				Flags: []cli.Flag{dirFlag,
					&cli.BoolFlag{Name: "wait-back", Usage: "then wait until systemd restarted it and the node announces the VIP again"},
					&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "give up after this long"},
				},
				Action: runKill,
			},
			loadCommand(),
			{
				Name:   "down",
				Usage:  "tear the sandbox down",
				Flags:  []cli.Flag{dirFlag},
				Action: runDown,
			},
			{
				Name:   "status",
				Usage:  "show namespaces, processes, BGP sessions and the router's VIP routes",
				Flags:  []cli.Flag{dirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: runStatus,
			},
			{
				Name:            "serve-backend",
				Usage:           "run a backend server (started by `up` inside a backend namespace)",
				Hidden:          true,
				SkipFlagParsing: true,
				Action: func(c *cli.Context) error {
					ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
					defer stop()
					return testbed.BackendMain(ctx, c.Args().Slice())
				},
			},
		},
	}
}

func main() {
	err := newApp().Run(os.Args)
	if err == nil {
		return
	}
	code := 1
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "lbctl-testbed:", msg)
	}
	os.Exit(code)
}
