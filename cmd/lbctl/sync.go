//go:build linux

package main

import (
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/ops"
	nodesync "github.com/lbctl/lbctl/node/sync"
)

func init() {
	register(syncCommand())
}

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:     "sync",
		Category: "node",
		Usage:    "install the newest bundle of a directory or URL if it is newer than the current release (run hourly by lbctl-sync.timer)",
		Description: "SOURCE is a directory of <name>-<serial>.bundle files (the highest serial is the newest) or an http(s)://\n" +
			"URL of the latest bundle, fetched with If-None-Match/If-Modified-Since (state in STATE_DIR/sync-http.json).\n" +
			"The bundle is verified against the trusted keys before anything else; an unsigned or tampered bundle is refused.",
		Flags: []cli.Flag{configFlag,
			&cli.StringFlag{Name: "source", Usage: "bundle `DIR` or URL", EnvVars: []string{"LBCTL_SYNC_SOURCE"}},
			&clix.DurationFlag{Name: "max-delay", Usage: "wait a random delay up to `DURATION` first", EnvVars: []string{"LBCTL_SYNC_MAX_DELAY"}},
			&cli.IntFlag{Name: "attempts", Value: 4, Usage: "fetch attempts (with exponential backoff) before giving up", EnvVars: []string{"LBCTL_SYNC_ATTEMPTS"}},
			&cli.StringFlag{Name: "node", Usage: "this node's `HOSTNAME` in the bundle's node profiles (default: the configured one)"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for another install to finish instead of failing"},
			jsonFlag,
		},
		Action: runSync,
	}
}

// syncJSON is `lbctl sync --json`.
type syncJSON struct {
	Action     string `json:"action"`
	Source     string `json:"source"`
	Origin     string `json:"origin,omitempty"`
	Serial     uint64 `json:"serial,omitempty"`
	Current    uint64 `json:"current,omitempty"`
	HasCurrent bool   `json:"has_current"`
	Highest    uint64 `json:"highest,omitempty"`
	Attempts   int    `json:"attempts"`
	DelayMS    int64  `json:"delay_ms"`
	Error      string `json:"error,omitempty"`
}

func runSync(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return cli.Exit("sync: no arguments; the source is --source DIR|URL", 2)
	}
	if c.String("source") == "" {
		return cli.Exit("sync: --source DIR|URL is required (the packaged service reads LBCTL_SYNC_SOURCE from /etc/default/lbctl-sync)", 2)
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	si := ops.SyncInstall{Log: nodeLogger(), Wait: c.Bool("wait"), Progress: stepPrinter(c), Done: func() { finishProgress(c) }}
	opt := nodesync.Options{MaxDelay: c.Duration("max-delay"), Attempts: c.Int("attempts")}
	if !c.Bool("json") {
		si.Installed = func(res *install.Result) { printResult(c.App.Writer, res) }
		opt.Progress = func(msg string) { fmt.Fprintln(c.App.ErrWriter, msg) }
	}
	inst, err := ops.SyncInstaller(cfg, si)
	if err != nil {
		return err
	}
	// SIGINT and SIGTERM cancel the sync; an install under way rolls back.
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	src := ops.SyncSource(c.String("source"), cfg.StateDir, "lbctl-sync/"+version)
	res, err := nodesync.Sync(ctx, src, inst, opt)
	if c.Bool("json") {
		if jerr := writeJSON(c.App.Writer, newSyncJSON(src, res, err)); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return cli.Exit("sync failed: "+indent(err.Error()), 1)
	}
	if !c.Bool("json") {
		printSync(c.App.Writer, src, res)
	}
	return nil
}

func newSyncJSON(src nodesync.Source, res nodesync.Result, err error) syncJSON {
	out := syncJSON{Action: string(res.Action), Source: src.String(), Origin: res.Origin, Serial: res.Serial,
		Current: res.Current, HasCurrent: res.HasCurrent, Highest: res.Highest, Attempts: res.Attempts, DelayMS: res.Delay.Milliseconds()}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// printSync says why a sync installed nothing (an install says what it did
// itself).
func printSync(w io.Writer, src nodesync.Source, res nodesync.Result) {
	switch res.Action {
	case nodesync.NotModified:
		fmt.Fprintf(w, "%s: not modified since the last sync (current release %d)\n", src, res.Current)
	case nodesync.UpToDate:
		fmt.Fprintf(w, "release %d from %s is current: nothing to do\n", res.Serial, res.Origin)
	case nodesync.Older:
		if res.Highest > 0 {
			fmt.Fprintf(w, "the newest bundle %s (%d) is older than the highest serial this node installed, %d: nothing to do\n", res.Origin, res.Serial, res.Highest)
		} else {
			fmt.Fprintf(w, "the newest bundle %s (%d) is older than the current release %d: nothing to do\n", res.Origin, res.Serial, res.Current)
		}
	}
}
