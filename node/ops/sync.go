package ops

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
	nodesync "github.com/lbctl/lbctl/node/sync"
)

// SyncSource is the bundle source s names: an http(s):// URL (fetched
// conditionally, its state in the state directory) or a directory.
func SyncSource(s, stateDir, userAgent string) nodesync.Source {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return &nodesync.HTTPSource{URL: s, StateFile: filepath.Join(stateDir, "sync-http.json"), UserAgent: userAgent}
	}
	return nodesync.DirSource{Dir: s}
}

// SyncInstall is how a sync installs what it fetched.
type SyncInstall struct {
	Log *slog.Logger
	// Wait waits for another install to finish instead of failing.
	Wait bool
	// Progress, if set, is told each install step; Done, once the
	// install returned.
	Progress func(i, total int, op plan.Op)
	Done     func()
	// Installed, if set, receives the result of a successful install.
	Installed func(*install.Result)
}

// SyncInstaller is what nodesync.Sync needs of the node: bundles are
// verified against the trusted keys before anything else, and the node
// side is opened only when there is something to install. It creates the
// releases store when missing.
func SyncInstaller(cfg *config.Config, si SyncInstall) (nodesync.Installer, error) {
	store, err := release.Open(cfg.StateDir)
	if err != nil {
		return nodesync.Installer{}, err
	}
	open := setup.Opener(cfg.TrustedDir, time.Now)
	return nodesync.Installer{
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
		Install: func(ctx context.Context, b []byte) error { return si.install(ctx, cfg, b) },
	}, nil
}

func (si SyncInstall) install(ctx context.Context, cfg *config.Config, b []byte) error {
	n, err := setup.Open(ctx, cfg, si.Log)
	if err != nil {
		return err
	}
	defer n.Close()
	n.Installer.Progress = si.Progress
	res, err := n.Installer.Install(ctx, b, install.Options{Node: cfg.Node, Wait: si.Wait, Op: "sync"})
	if si.Done != nil {
		si.Done()
	}
	if err == nil && si.Installed != nil {
		si.Installed(res)
	}
	return err
}
