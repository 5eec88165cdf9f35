//go:build !linux

package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
)

// On other systems (an admin's laptop) the node commands exist, so help and
// scripts see the same CLI, but they say they need Linux.
func init() {
	for _, name := range []string{"install", "plan", "rollback", "releases", "status", "drain", "undrain", "server", "agent", "sync", "logs", "vip", "doctor", "repair"} {
		register(&cli.Command{Name: name, Category: "node", Usage: "node command (Linux only)", SkipFlagParsing: true,
			Action: func(*cli.Context) error {
				return cli.Exit(fmt.Sprintf("lbctl %s runs on an LB node and needs Linux (this is %s)", name, runtime.GOOS), 1)
			}})
	}
}
