package install_test

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/test/nodetest"
)

// replayNode is a real Installer (the node's own setup.Opener verifying
// minisign-signed bundles against a trusted directory, a releases store in
// a temporary state directory) over the in-memory host, with a clock the
// test moves.
type replayNode struct {
	t     *testing.T
	key   nodetest.Key
	state string
	now   time.Time
	host  *apply.Fake
	in    *install.Installer
}

var replayNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func newReplayNode(t *testing.T, pol install.Replay) *replayNode {
	t.Helper()
	key := nodetest.NewKey(t, 42)
	trusted := key.TrustedDir
	n := &replayNode{t: t, key: key, state: filepath.Join(t.TempDir(), "state"), now: replayNow, host: apply.NewFake()}
	store, err := release.Open(n.state)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return n.now }
	n.in = &install.Installer{
		Store:    store,
		Host:     n.host,
		Open:     setup.Opener(trusted, clock),
		OpenKept: setup.Opener(trusted, func() time.Time { return time.Time{} }),
		Replay:   pol,
		Render:   replayRender,
		Validate: func(context.Context, *model.Site, *plan.State, *plan.Plan) error { return nil },
		Now:      clock,
	}
	return n
}

func replayRender(site *model.Site, _ *model.Node, serial uint64) (*plan.State, error) {
	label := site.Nodes[0].Source // what makes the test's bundles differ
	st := &plan.State{Serial: serial, BirdConf: []byte("bird " + label)}
	for _, v := range site.VIPs {
		a := v.Addresses[0]
		st.VIPs = append(st.VIPs, plan.VIP{Name: v.Name, Addresses: []netip.Addr{a},
			Files: []plan.File{{Path: "haproxy.cfg", Data: []byte(label)}}})
	}
	return st, nil
}

// bundle is a signed bundle of site campus as lbctl build writes it: created an hour
// before the node's clock, expiring 30 days after (build's default).
func (n *replayNode) bundle(serial uint64, name string) []byte {
	created := n.now.Add(-time.Hour)
	exp := created.Add(30 * 24 * time.Hour)
	return n.bundleAt(serial, name, created, &exp)
}

func (n *replayNode) bundleAt(serial uint64, name string, created time.Time, expires *time.Time) []byte {
	n.t.Helper()
	site := &model.Site{FormatVersion: model.FormatVersion, Name: "campus", Nodes: []model.Node{{Hostname: "lb1", Source: "nodes/" + name + ".yaml", RouterID: netip.MustParseAddr("198.51.100.11")}},
		VIPs: []model.VIP{{Name: "192.0.2.10", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")}}}}
	return n.key.Bundle(n.t, site, archive.Manifest{Serial: serial, Created: created, Expires: expires})
}

func (n *replayNode) install(b []byte, opt install.Options) (*install.Result, error) {
	opt.Node = "lb1"
	return n.in.Install(context.Background(), b, opt)
}

func (n *replayNode) mustInstall(b []byte, opt install.Options) {
	n.t.Helper()
	if _, err := n.install(b, opt); err != nil {
		n.t.Fatal(err)
	}
}

// snapshot is every file under the state directory with its content (and
// symlink targets), and the host's state.
func (n *replayNode) snapshot() nodetest.Tree {
	n.t.Helper()
	out := nodetest.Snapshot(n.t, n.state)
	out["host"] = n.host.String()
	return out
}

// refuse installs b expecting want, with nothing on disk or host changed.
func (n *replayNode) refuse(what string, b []byte, opt install.Options, want error, mention string) {
	n.t.Helper()
	before := n.snapshot()
	_, err := n.install(b, opt)
	if !errors.Is(err, want) {
		n.t.Fatalf("%s: error %v, want %v", what, err, want)
	}
	if !strings.Contains(err.Error(), mention) {
		n.t.Errorf("%s: error %q does not mention %q", what, err, mention)
	}
	nodetest.Same(n.t, what, before, n.snapshot())
	n.t.Logf("%s: %v", what, err)
}

func (n *replayNode) highest() uint64 {
	n.t.Helper()
	h, ok, err := n.in.Store.ReadHighest()
	if err != nil || !ok {
		n.t.Fatalf("highest serial record: %v %v", ok, err)
	}
	return h.Serial
}

func TestReplayHighestSerial(t *testing.T) {
	n := newReplayNode(t, install.Replay{})
	b10, b12 := n.bundle(10, "ten"), n.bundle(12, "twelve")
	n.mustInstall(b10, install.Options{})
	n.mustInstall(b12, install.Options{})
	if h := n.highest(); h != 12 {
		t.Fatalf("highest %d, want 12", h)
	}
	b11 := n.bundle(11, "eleven")
	n.refuse("an older serial", b11, install.Options{}, install.ErrDowngrade, "current release 12")
	// The same serial with other content is not silently a no-op.
	n.refuse("another bundle with the current serial", n.bundle(12, "rebuilt-twelve"), install.Options{AllowDowngrade: true}, install.ErrSerialReused, "build the change with a new serial")
	if res, err := n.install(b12, install.Options{}); err != nil || !res.NoOp {
		t.Fatalf("the current bundle again: %+v %v", res, err)
	}

	// Rollback is the operator going back to a release this node
	// installed: no flag needed, the record stays at 12.
	res, err := n.in.Rollback(context.Background(), 10, install.Options{Node: "lb1"})
	if err != nil || res.To != 10 {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if h := n.highest(); h != 12 {
		t.Fatalf("highest after rollback %d, want 12", h)
	}
	// 11 is newer than the current release but older than what the node
	// has installed: a replay.
	n.refuse("a serial between current and highest", b11, install.Options{}, install.ErrDowngrade, "highest serial installed here, 12")
	// Another bundle signed with serial 12 is not the one installed.
	n.refuse("another bundle with the highest serial", n.bundle(12, "other-twelve"), install.Options{}, install.ErrSerialReused, "serial 12 was installed here from another bundle")
	// The bundle 12 itself rolls the node forward again.
	n.mustInstall(b12, install.Options{})

	// The record survives the loss of the releases store.
	for _, p := range []string{"releases", "current", "install.log"} {
		if err := os.RemoveAll(filepath.Join(n.state, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(n.state, "releases"), 0o750); err != nil {
		t.Fatal(err)
	}
	n.refuse("an older serial after the releases store was deleted", b11, install.Options{}, install.ErrDowngrade, "highest serial installed here, 12")

	// --allow-downgrade installs it, logged, and leaves the record.
	n.mustInstall(b11, install.Options{AllowDowngrade: true})
	if h := n.highest(); h != 12 {
		t.Fatalf("highest after a forced downgrade %d, want 12", h)
	}
	hist, err := n.in.Store.History()
	if err != nil {
		t.Fatal(err)
	}
	last := hist[len(hist)-1]
	if last.To != 11 || last.Result != "committed" || len(last.Overrides) != 1 || !strings.HasPrefix(last.Overrides[0], "allow-downgrade: serial 11 is lower than the highest serial installed here, 12") {
		t.Fatalf("install log entry %+v does not record the override", last)
	}
}

func TestReplayMinSerial(t *testing.T) {
	n := newReplayNode(t, install.Replay{MinSerial: 100})
	n.refuse("a serial below min_serial on a fresh node", n.bundle(50, "old"), install.Options{}, install.ErrDowngrade, "min_serial 100 of the node configuration")
	if _, ok, _ := n.in.Store.ReadHighest(); ok {
		t.Fatal("a refused install recorded a highest serial")
	}
	n.mustInstall(n.bundle(100, "pinned"), install.Options{})
	if h := n.highest(); h != 100 {
		t.Fatalf("highest %d", h)
	}
}

func TestReplaySerialJump(t *testing.T) {
	clock := uint64(replayNow.Unix())
	for _, c := range []struct {
		name    string
		first   uint64 // installed first, 0 for none
		serial  uint64
		refused bool
	}{
		{"build-time serial on a fresh node", 0, clock, false},
		{"build-time serial a day ahead", 0, clock + 86400, false},
		{"31 days ahead of the clock on a fresh node", 0, clock + 31*86400, true},
		{"the largest serial", clock, math.MaxUint64, true},
		{"counter serials", 5, 6, false},
		{"date serials above the clock", 2026120101, 2026120201, false},
		{"date serials a century on", 2026120101, 2126120101, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newReplayNode(t, install.Replay{})
			if c.first != 0 {
				// A first serial above the clock (date serials) needs the
				// flag once on a fresh node, or a min_serial pin.
				n.mustInstall(n.bundle(c.first, "first"), install.Options{AllowSerialJump: c.first > clock})
			}
			b := n.bundle(c.serial, "next")
			if !c.refused {
				n.mustInstall(b, install.Options{})
				return
			}
			n.refuse("serial jump", b, install.Options{}, install.ErrSerialJump, "more than 2592000 above")
			n.mustInstall(b, install.Options{AllowSerialJump: true})
			h, _ := n.in.Store.History()
			if o := h[len(h)-1].Overrides; len(o) != 1 || !strings.HasPrefix(o[0], "allow-serial-jump: ") {
				t.Fatalf("overrides %q", o)
			}
		})
	}
}

// A min_serial pin is also the reference of the jump check: a fleet that
// numbers bundles by date pins the first date, and fresh nodes take it
// without a flag.
func TestReplayMinSerialPinsDateSerials(t *testing.T) {
	n := newReplayNode(t, install.Replay{MinSerial: 2026000000})
	n.mustInstall(n.bundle(2026120101, "date"), install.Options{})
}

func TestReplayBuildTimeAhead(t *testing.T) {
	n := newReplayNode(t, install.Replay{})
	created := n.now.Add(48 * time.Hour)
	b := n.bundleAt(1, "future", created, nil)
	n.refuse("a bundle built two days ahead", b, install.Options{}, install.ErrSerialJump, "more than 24h0m0s after this node's clock")
	n.mustInstall(b, install.Options{AllowSerialJump: true})
}

func TestReplayExpiry(t *testing.T) {
	n := newReplayNode(t, install.Replay{})
	old := n.now.Add(-31 * 24 * time.Hour)
	exp := old.Add(30 * 24 * time.Hour)
	n.refuse("an expired bundle", n.bundleAt(5, "expired", old, &exp), install.Options{}, archive.ErrExpired, "expired at")

	// A release the node installed stays a rollback target after its
	// expiry: expiry bounds delivery, not going back.
	n.mustInstall(n.bundle(6, "six"), install.Options{})
	n.now = n.now.Add(40 * 24 * time.Hour)
	n.mustInstall(n.bundle(7, "seven"), install.Options{})
	if res, err := n.in.Rollback(context.Background(), 6, install.Options{Node: "lb1"}); err != nil || res.To != 6 {
		t.Fatalf("rollback to the expired release 6: %+v %v", res, err)
	}
	// But delivering it again is refused: it expired, and it is a replay.
	n.mustInstall(n.bundle(7, "seven"), install.Options{})
	r6, err := n.in.Store.Load(6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.install(r6.Bundle, install.Options{AllowDowngrade: true}); !errors.Is(err, archive.ErrExpired) {
		t.Fatalf("re-delivered expired release 6: %v", err)
	}
}

// A dry run on a node with no state directory creates nothing.
func TestDryRunCreatesNothing(t *testing.T) {
	n := newReplayNode(t, install.Replay{})
	b := n.bundle(3, "three")
	root := filepath.Join(t.TempDir(), "absent")
	n.in.Store = &release.Store{Root: root}
	res, err := n.install(b, install.Options{DryRun: true})
	if err != nil || res.HasFrom || len(res.Plan.Steps) == 0 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run created %s: %v", root, err)
	}
}

// An install that crashed after its commit but before raising the record:
// recovery keeps the new release and records it.
func TestReplayRecordAfterCrash(t *testing.T) {
	n := newReplayNode(t, install.Replay{})
	n.mustInstall(n.bundle(10, "ten"), install.Options{})
	b11 := n.bundle(11, "eleven")
	st := n.in.Store
	state, _ := replayRender(&model.Site{Name: "campus", Nodes: []model.Node{{Source: "nodes/eleven.yaml"}}}, nil, 11)
	if err := st.Stage(&release.Release{Serial: 11, Bundle: b11, State: state}); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteIntent(release.Intent{Op: "install", From: 10, HasFrom: true, To: 11}); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(11); err != nil {
		t.Fatal(err)
	}
	if h := n.highest(); h != 10 {
		t.Fatalf("highest before recovery %d", h)
	}
	if did, err := n.in.Recover(context.Background(), false); err != nil || !did {
		t.Fatalf("recover: %v %v", did, err)
	}
	if h := n.highest(); h != 11 {
		t.Fatalf("highest after recovery %d, want 11", h)
	}
	n.refuse("the release before the crash", n.bundle(10, "ten"), install.Options{}, install.ErrDowngrade, "current release 11")
}
