//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
	nodesync "github.com/lbctl/lbctl/node/sync"
)

func init() {
	register(&cli.Command{
		Name:     "sync",
		Category: "node",
		Usage:    "install the newest bundle of a directory or URL if it is newer than the current release (run hourly by lbctl-sync.timer)",
		Description: "SOURCE is a directory of <name>-<serial>.bundle files (the highest serial is the newest) or an http(s)://\n" +
			"URL of the latest bundle, fetched with If-None-Match/If-Modified-Since (state in STATE_DIR/sync-http.json).\n" +
			"The bundle is verified against the trusted keys before anything else; an unsigned or tampered bundle is refused.",
		Flags: []cli.Flag{configFlag,
			&cli.StringFlag{Name: "source", Usage: "bundle `DIR` or URL", EnvVars: []string{"LBCTL_SYNC_SOURCE"}},
			&cli.DurationFlag{Name: "max-delay", Usage: "wait a random delay up to `DURATION` first", EnvVars: []string{"LBCTL_SYNC_MAX_DELAY"}},
			&cli.IntFlag{Name: "attempts", Value: 4, Usage: "fetch attempts (with exponential backoff) before giving up", EnvVars: []string{"LBCTL_SYNC_ATTEMPTS"}},
			&cli.StringFlag{Name: "node", Usage: "this node's `HOSTNAME` in the bundle's node profiles (default: the configured one)"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for another install to finish instead of failing"},
			jsonFlag,
		},
		Action: runSync,
	})
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

func syncSource(s, stateDir string) nodesync.Source {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return &nodesync.HTTPSource{URL: s, StateFile: filepath.Join(stateDir, "sync-http.json"),
			UserAgent: "lbctl-sync/" + version}
	}
	return nodesync.DirSource{Dir: s}
}

func runSync(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return cli.Exit("sync: no arguments; the source is --source DIR|URL", 2)
	}
	if c.String("source") == "" {
		return cli.Exit("sync: --source DIR|URL is required (the packaged service reads LBCTL_SYNC_SOURCE from /etc/default/lbctl-sync)", 2)
	}
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return err
	}
	if c.IsSet("node") {
		cfg.Node = c.String("node")
	}
	store, err := release.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	// SIGINT and SIGTERM cancel the sync; an install under way rolls back.
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	open := setup.Opener(cfg.TrustedDir, time.Now)
	inst := nodesync.Installer{
		Verify: func(b []byte) (uint64, error) {
			v, err := open(b)
			if err != nil {
				return 0, err
			}
			return v.Serial, nil
		},
		Current: store.Current,
		Highest: func() (uint64, bool, error) {
			h, ok, err := store.ReadHighest()
			return h.Serial, ok, err
		},
		// The node side is opened only when there is something to install.
		Install: func(ctx context.Context, b []byte) error {
			n, err := setup.Open(ctx, cfg, nodeLogger())
			if err != nil {
				return err
			}
			defer n.Close()
			n.Installer.Progress = stepPrinter(c)
			res, err := n.Installer.Install(ctx, b, install.Options{Node: cfg.Node, Wait: c.Bool("wait"), Op: "sync"})
			finishProgress(c)
			if err != nil {
				return err
			}
			if !c.Bool("json") {
				printResult(c.App.Writer, res)
			}
			return nil
		},
	}
	src := syncSource(c.String("source"), cfg.StateDir)
	opt := nodesync.Options{MaxDelay: c.Duration("max-delay"), Attempts: c.Int("attempts")}
	if !c.Bool("json") {
		opt.Progress = func(msg string) { fmt.Fprintln(c.App.ErrWriter, msg) }
	}
	res, err := nodesync.Sync(ctx, src, inst, opt)
	if c.Bool("json") {
		out := syncJSON{Action: string(res.Action), Source: src.String(), Origin: res.Origin, Serial: res.Serial,
			Current: res.Current, HasCurrent: res.HasCurrent, Highest: res.Highest, Attempts: res.Attempts, DelayMS: res.Delay.Milliseconds()}
		if err != nil {
			out.Error = err.Error()
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(out); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return cli.Exit("sync failed: "+indent(err.Error()), 1)
	}
	if !c.Bool("json") {
		switch res.Action {
		case nodesync.NotModified:
			fmt.Fprintf(c.App.Writer, "%s: not modified since the last sync (current release %d)\n", src, res.Current)
		case nodesync.UpToDate:
			fmt.Fprintf(c.App.Writer, "release %d from %s is current: nothing to do\n", res.Serial, res.Origin)
		case nodesync.Older:
			if res.Highest > 0 {
				fmt.Fprintf(c.App.Writer, "the newest bundle %s (%d) is older than the highest serial this node installed, %d: nothing to do\n", res.Origin, res.Serial, res.Highest)
			} else {
				fmt.Fprintf(c.App.Writer, "the newest bundle %s (%d) is older than the current release %d: nothing to do\n", res.Origin, res.Serial, res.Current)
			}
		}
	}
	return nil
}
