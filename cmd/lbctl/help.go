package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

func init() {
	register(helpCommand(), versionCommand())
}

func helpCommand() *cli.Command {
	return &cli.Command{Name: "help", Usage: "show the commands, or the help of one command", ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Action: func(c *cli.Context) error { return clix.ShowHelp(c, c.Args().Slice()) }}
}

func versionCommand() *cli.Command {
	return &cli.Command{Name: "version", Usage: "print lbctl's version, commit and Go version", Flags: []cli.Flag{jsonFlag}, Action: runVersion}
}

// versionInfo is what `lbctl version --json` prints.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func runVersion(c *cli.Context) error {
	if c.NArg() > 0 {
		return clix.Usagef("version: no arguments")
	}
	v := versionInfo{Version: version, Commit: clix.Commit(commit), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, v)
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	fmt.Fprintf(c.App.Writer, "lbctl %s (commit %s, %s, %s)\n", v.Version, v.Commit, v.GoVersion, v.Platform)
	return nil
}
