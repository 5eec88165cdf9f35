// Package ops is the node-side API of lbctl: every operation an operator
// (or `lbctl push` over ssh) asks of a node — status, drain and undrain,
// doctor, verify and repair, server maintenance, the release list, sync,
// recovery of an interrupted install, one VIP's unit and journal — and the
// start of the health agent. The CLI (cmd/lbctl) parses flags, calls one
// function here and formats what it returns; the agent starts through
// RunAgent; `lbctl status --json` prints the nodeapi.Status that Status
// returns and push reads.
//
// ops decides what an operation reads and changes; node/setup assembles the
// parts it uses (the store, the Host, the Installer, the announcer). ops
// prints nothing: results go back to the caller, progress through
// callbacks.
package ops

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/release"
)

// ReadStore opens the node's releases store without creating anything:
// a node with nothing installed gives a nil store and no error; a user who
// may not read the state gets an error wrapping release.ErrPermission.
func ReadStore(cfg *config.Config) (*release.Store, error) {
	store, err := release.OpenExisting(cfg.StateDir)
	if errors.Is(err, release.ErrNoState) {
		return nil, nil
	}
	return store, err
}

// NothingInstalled says that the node has no state at all.
func NothingInstalled(cfg *config.Config) string {
	return fmt.Sprintf("node %s: nothing installed (no state directory %s)", cfg.Node, cfg.StateDir)
}

// installed loads the current release of the node's store without
// creating anything; nil when nothing is installed.
func installed(cfg *config.Config) (*release.Release, error) {
	store, err := ReadStore(cfg)
	if err != nil || store == nil {
		return nil, err
	}
	return current(store)
}

// current loads the current release; nil when none is installed.
func current(store *release.Store) (*release.Release, error) {
	cur, ok, err := store.Current()
	if err != nil || !ok {
		return nil, err
	}
	return store.Load(cur)
}

// UnknownVIPError is a VIP name that the current release does not have.
type UnknownVIPError struct {
	Name   string
	Serial uint64
	VIPs   []string // the release's VIPs
}

func (e *UnknownVIPError) Error() string {
	return fmt.Sprintf("no VIP %q in release %d (VIPs: %s)", e.Name, e.Serial, strings.Join(e.VIPs, " "))
}

// checkVIPs returns an UnknownVIPError for the first name that r does not
// have.
func checkVIPs(r *release.Release, names []string) error {
	for _, n := range names {
		if r.State.VIP(n) == nil {
			return &UnknownVIPError{Name: n, Serial: r.Serial, VIPs: r.State.Names()}
		}
	}
	return nil
}
