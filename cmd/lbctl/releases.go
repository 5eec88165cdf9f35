//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/node/release"
)

func init() {
	register(releasesCommand())
}

func releasesCommand() *cli.Command {
	return &cli.Command{Name: "releases", Category: "node", Usage: "list the releases kept on this node and the install log",
		Flags: []cli.Flag{configFlag, jsonFlag}, Action: runReleases}
}

func runReleases(c *cli.Context) error {
	cfg, store, err := readStore(c)
	if err != nil {
		return err
	}
	if store == nil {
		if c.Bool("json") {
			return writeJSON(c.App.Writer, map[string]any{"current": 0, "releases": []uint64{}, "log": []release.LogEntry{}, "installed": false})
		}
		fmt.Fprintln(c.App.Writer, ops.NothingInstalled(cfg))
		return nil
	}
	rs, err := ops.ListReleases(store)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		out := map[string]any{"current": rs.Current, "releases": rs.Serials, "log": rs.Log, "installed": true, "min_serial": cfg.MinSerial}
		if rs.Highest != nil {
			out["highest"] = *rs.Highest
		}
		return writeJSON(c.App.Writer, out)
	}
	printReleases(c.App.Writer, cfg, rs)
	return nil
}

func printReleases(w io.Writer, cfg *config.Config, rs *ops.Releases) {
	if len(rs.Serials) == 0 {
		fmt.Fprintf(w, "node %s: no releases kept in %s\n", cfg.Node, cfg.StateDir)
	}
	for _, s := range rs.Serials {
		mark := " "
		if s == rs.Current {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %d\n", mark, s)
	}
	if h := rs.Highest; h != nil {
		fmt.Fprintf(w, "highest serial installed here: %d (on %s); lower serials need --allow-downgrade\n", h.Serial, h.Time.Format(time.RFC3339))
	}
	if cfg.MinSerial > 0 {
		fmt.Fprintf(w, "min_serial: %d\n", cfg.MinSerial)
	}
	if len(rs.Log) > 0 {
		fmt.Fprintln(w, "\ninstall log (newest last):")
		for _, e := range rs.Log[max(0, len(rs.Log)-10):] {
			fmt.Fprintln(w, logLine(e))
		}
	}
}

// logLine is one line of the install log as releases shows it.
func logLine(e release.LogEntry) string {
	line := fmt.Sprintf("  %s %-8s %d -> %d %s (%d ms)", e.Time.Format(time.RFC3339), e.Op, e.From, e.To, e.Result, e.Millis)
	if e.Error != "" {
		line += ": " + strings.SplitN(e.Error, "\n", 2)[0]
	}
	if len(e.Overrides) > 0 {
		line += " [" + strings.Join(e.Overrides, "; ") + "]"
	}
	return line
}
