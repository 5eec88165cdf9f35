package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// A test bundle is JSON of a model.Site with the serial in a wrapper; the
// real installer verifies signed archives, which the archive package tests.
type testBundle struct {
	Serial uint64
	Site   model.Site
}

func mkBundle(serial uint64, vips map[string]string) []byte {
	s := model.Site{FormatVersion: model.FormatVersion, Nodes: []model.Node{{Hostname: "lb1"}}}
	for name, cfg := range vips {
		s.VIPs = append(s.VIPs, model.VIP{Name: name, Addresses: []netip.Addr{netip.MustParseAddr(name)}, Services: []string{cfg}})
	}
	b, _ := json.Marshal(testBundle{Serial: serial, Site: s})
	return b
}

func testOpen(b []byte) (*Verified, error) {
	var tb testBundle
	if err := json.Unmarshal(b, &tb); err != nil {
		return nil, fmt.Errorf("bad signature")
	}
	return &Verified{Serial: tb.Serial, Site: &tb.Site}, nil
}

func testRender(site *model.Site, _ *model.Node, serial uint64) (*plan.State, error) {
	st := &plan.State{Serial: serial, BirdConf: []byte("bird")}
	for _, v := range site.VIPs {
		a := v.Addresses[0]
		st.VIPs = append(st.VIPs, plan.VIP{Name: v.Name, Addresses: []netip.Addr{a},
			Files: []plan.File{{Path: "haproxy.cfg", Data: []byte(v.Services[0])}}})
		st.Firewall.VIPs4 = append(st.Firewall.VIPs4, a)
		st.Firewall.Accept4 = append(st.Firewall.Accept4, model.AddrPort{Addr: a, Port: 80})
	}
	return st, nil
}

func testValidate(_ context.Context, _ *model.Site, next *plan.State, _ *plan.Plan) error {
	for _, v := range next.VIPs {
		if strings.Contains(string(v.Files[0].Data), "broken") {
			return fmt.Errorf("vip %s: haproxy -c: parse error", v.Name)
		}
	}
	return nil
}

func newInstaller(t *testing.T, host apply.Host) *Installer {
	t.Helper()
	st, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Installer{Store: st, Host: host, Open: testOpen, Render: testRender, Validate: testValidate}
}

var (
	v1 = map[string]string{"192.0.2.10": "a1", "192.0.2.11": "b1"}
	v2 = map[string]string{"192.0.2.10": "a2", "192.0.2.12": "c1"}
)

func TestInstallUpgradeRollback(t *testing.T) {
	f := apply.NewFake()
	in := newInstaller(t, f)
	ctx := context.Background()
	opt := Options{Node: "lb1"}
	if _, err := in.Install(ctx, mkBundle(1, v1), opt); err != nil {
		t.Fatal(err)
	}
	s1 := f.String()
	res, err := in.Install(ctx, mkBundle(2, v2), opt)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Plan.Added, res.Plan.Changed, res.Plan.Removed) != "[192.0.2.12] [192.0.2.10] [192.0.2.11]" {
		t.Fatalf("plan %v %v %v", res.Plan.Added, res.Plan.Changed, res.Plan.Removed)
	}
	s2 := f.String()
	// Same serial: nothing happens.
	calls := f.Calls
	if res, err := in.Install(ctx, mkBundle(2, v2), opt); err != nil || !res.NoOp || f.Calls != calls {
		t.Fatalf("same serial: res %+v err %v calls %d->%d", res, err, calls, f.Calls)
	}
	// Lower serial: refused without --allow-downgrade, nothing changes.
	if _, err := in.Install(ctx, mkBundle(1, v1), opt); !errors.Is(err, ErrDowngrade) || f.String() != s2 {
		t.Fatalf("downgrade: %v", err)
	}
	// Rollback re-applies release 1 through the same path.
	if _, err := in.Rollback(ctx, 0, opt); err != nil {
		t.Fatal(err)
	}
	if got := f.StateWithoutPIDs(); got != stripPIDs(s1) {
		t.Fatalf("after rollback:\n%s\nwant:\n%s", got, stripPIDs(s1))
	}
	if cur, _, _ := in.Store.Current(); cur != 1 {
		t.Fatalf("current = %d after rollback", cur)
	}
	h, _ := in.Store.History()
	if len(h) != 3 || h[2].Op != "rollback" || h[2].Result != "committed" {
		t.Fatalf("history %+v", h)
	}
}

func stripPIDs(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, " pid="); i >= 0 {
			l = l[:i]
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func TestInstallRefusesBadInputBeforeWriting(t *testing.T) {
	f := apply.NewFake()
	in := newInstaller(t, f)
	ctx := context.Background()
	if _, err := in.Install(ctx, mkBundle(1, v1), Options{Node: "lb1"}); err != nil {
		t.Fatal(err)
	}
	before, calls := f.String(), f.Calls
	serials, _ := in.Store.Serials()
	for name, tc := range map[string]struct {
		bundle []byte
		node   string
		err    string
	}{
		"unsigned":     {[]byte("not a bundle"), "lb1", "verify bundle: bad signature"},
		"unknown node": {mkBundle(2, v2), "lb9", `node "lb9" has no profile in bundle 2 (profiles: lb1)`},
		"bad config":   {mkBundle(2, map[string]string{"192.0.2.10": "broken"}), "lb1", "vip 192.0.2.10: haproxy -c: parse error"},
	} {
		_, err := in.Install(ctx, tc.bundle, Options{Node: tc.node})
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.err)
		}
		after, _ := in.Store.Serials()
		if f.String() != before || f.Calls != calls || len(after) != len(serials) {
			t.Errorf("%s: something changed", name)
		}
	}
}

func TestInstallFailureRollsBack(t *testing.T) {
	f := apply.NewFake()
	in := newInstaller(t, f)
	ctx := context.Background()
	if _, err := in.Install(ctx, mkBundle(1, v1), Options{Node: "lb1"}); err != nil {
		t.Fatal(err)
	}
	before := f.String()
	f.Unhealthy["192.0.2.12"] = true
	_, err := in.Install(ctx, mkBundle(2, v2), Options{Node: "lb1"})
	if err == nil || !strings.Contains(err.Error(), "vip 192.0.2.12: not healthy") {
		t.Fatalf("err = %v", err)
	}
	if f.String() != before {
		t.Fatalf("state:\n%s\nwant:\n%s", f, before)
	}
	if cur, _, _ := in.Store.Current(); cur != 1 {
		t.Fatalf("current = %d", cur)
	}
	if p, _ := in.Store.ReadIntent(); p != nil {
		t.Fatalf("intent record left: %+v", p)
	}
	h, _ := in.Store.History()
	if last := h[len(h)-1]; last.Result != "rolled-back" || !strings.Contains(last.Error, "not healthy") {
		t.Fatalf("log %+v", last)
	}
}

// TestCrashRecovery simulates a crash after every mutating call of an
// upgrade: the node is left with part of the new release and the intent
// record; Recover must restore the old release exactly.
func TestCrashRecovery(t *testing.T) {
	ctx := context.Background()
	// Count the calls of a full upgrade.
	probe := apply.NewFake()
	in := newInstaller(t, probe)
	in.Install(ctx, mkBundle(1, v1), Options{Node: "lb1"})
	probe.Calls = 0
	if _, err := in.Install(ctx, mkBundle(2, v2), Options{Node: "lb1"}); err != nil {
		t.Fatal(err)
	}
	n := probe.Calls
	for k := 1; k <= n; k++ {
		f := apply.NewFake()
		in := newInstaller(t, f)
		if _, err := in.Install(ctx, mkBundle(1, v1), Options{Node: "lb1"}); err != nil {
			t.Fatal(err)
		}
		before := f.StateWithoutPIDs()
		// Do what Install does up to the crash: stage, intent, steps.
		next, _ := testRender(mustOpen(mkBundle(2, v2)).Site, nil, 2)
		cur, _ := in.Store.Load(1)
		p := plan.Compute(cur.State, next)
		in.Store.Stage(&release.Release{Serial: 2, Bundle: mkBundle(2, v2), State: next})
		in.Store.WriteIntent(release.Intent{Op: "install", From: 1, HasFrom: true, To: 2})
		f.FailAt = f.Calls + k
		for _, s := range p.Steps {
			if apply.Do(ctx, f, s.Do) != nil {
				break // killed here
			}
		}
		f.FailAt = 0
		// The next command finds the intent record.
		did, err := in.Recover(ctx, false)
		if err != nil || !did {
			t.Fatalf("crash at call %d: recover did=%v err=%v", k, did, err)
		}
		if got := f.StateWithoutPIDs(); got != before {
			t.Fatalf("crash at call %d: after recovery:\n%s\nwant:\n%s", k, got, before)
		}
		if c, _, _ := in.Store.Current(); c != 1 {
			t.Fatalf("crash at call %d: current %d", k, c)
		}
	}
	t.Logf("%d crash points recovered", n)
}

func mustOpen(b []byte) *Verified {
	v, err := testOpen(b)
	if err != nil {
		panic(err)
	}
	return v
}

// TestCommittedNotified checks that the agent is told of each commit,
// after the release is current, and of nothing else: not of a dry run, a
// no-op or a rolled-back install; and that a failing
// notification does not fail the committed install.
func TestCommittedNotified(t *testing.T) {
	f := apply.NewFake()
	in := newInstaller(t, f)
	var seen []uint64
	var fail error
	in.Committed = func(context.Context) error {
		cur, _, _ := in.Store.Current()
		seen = append(seen, cur)
		return fail
	}
	ctx := context.Background()
	opt := Options{Node: "lb1"}
	if _, err := in.Install(ctx, mkBundle(1, v1), opt); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Install(ctx, mkBundle(2, v2), Options{Node: "lb1", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if res, err := in.Install(ctx, mkBundle(1, v1), opt); err != nil || !res.NoOp {
		t.Fatalf("same serial: %+v %v", res, err)
	}
	f.Unhealthy["192.0.2.12"] = true
	if _, err := in.Install(ctx, mkBundle(2, v2), opt); err == nil {
		t.Fatal("an unhealthy install committed")
	}
	delete(f.Unhealthy, "192.0.2.12")
	fail = errors.New("agent gone")
	if _, err := in.Install(ctx, mkBundle(3, v2), opt); err != nil {
		t.Fatalf("a failing notification failed the committed install: %v", err)
	}
	if fmt.Sprint(seen) != "[1 3]" {
		t.Fatalf("agent told of the commits %v (current release when told), want [1 3]", seen)
	}
}

// TestPhases: an install says where its time went, phase by phase in
// order, and the phases add up to its duration (a clock that advances one
// second per reading).
func TestPhases(t *testing.T) {
	in := newInstaller(t, apply.NewFake())
	var ticks int
	base := time.Unix(1700000000, 0)
	in.Now = func() time.Time { ticks++; return base.Add(time.Duration(ticks) * time.Second) }
	res, err := in.Install(context.Background(), mkBundle(1, v1), Options{Node: "lb1"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var sum time.Duration
	for _, p := range res.Phases {
		names = append(names, p.Name)
		if p.Took <= 0 {
			t.Errorf("phase %s took %v", p.Name, p.Took)
		}
		sum += p.Took
	}
	if got, want := strings.Join(names, " "), "verify render lock plan validate stage apply commit"; got != want {
		t.Errorf("phases %q, want %q", got, want)
	}
	if sum < res.Duration || sum > res.Duration+2*time.Second {
		t.Errorf("phases add up to %v, the install took %v", sum, res.Duration)
	}
	// A dry run stops after validate.
	res, err = in.Install(context.Background(), mkBundle(2, v2), Options{Node: "lb1", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Phases); n != 5 || res.Phases[n-1].Name != "validate" {
		t.Errorf("dry run phases %v, want verify to validate", res.Phases)
	}
}

func mkSiteBundle(t *testing.T, site string, serial uint64, vips map[string]string) []byte {
	t.Helper()
	var tb testBundle
	if err := json.Unmarshal(mkBundle(serial, vips), &tb); err != nil {
		t.Fatal(err)
	}
	tb.Site.Name = site
	b, _ := json.Marshal(tb)
	return b
}

// TestInstallRefusesAnotherSite: the first install pins its site; a bundle
// of another site is then refused before anything is written, by install,
// dry run and rollback alike, unless the node configuration names the
// other site (the operator moved the node), whose install moves the pin.
func TestInstallRefusesAnotherSite(t *testing.T) {
	f := apply.NewFake()
	in := newInstaller(t, f)
	ctx := context.Background()
	if _, err := in.Install(ctx, mkSiteBundle(t, "campus", 1, v1), Options{Node: "lb1"}); err != nil {
		t.Fatal(err)
	}
	pin, ok, err := in.Store.ReadSite()
	if err != nil || !ok || pin.Site != "campus" || pin.Serial != 1 {
		t.Fatalf("pin %+v %v %v", pin, ok, err)
	}
	before, calls := f.String(), f.Calls
	for _, dry := range []bool{true, false} {
		_, err := in.Install(ctx, mkSiteBundle(t, "lab", 2, v2), Options{Node: "lb1", DryRun: dry})
		if !errors.Is(err, ErrOtherSite) || !strings.Contains(err.Error(), `bundle 2 belongs to site "lab", this node to site "campus" (pinned by release 1 in `) {
			t.Fatalf("dry run %v: %v", dry, err)
		}
	}
	if f.String() != before || f.Calls != calls {
		t.Errorf("a refused bundle changed the host (%d calls):\n%s", f.Calls-calls, f.String())
	}
	if cur, _, _ := in.Store.Current(); cur != 1 {
		t.Errorf("current %d", cur)
	}
	// The configuration names the node's site: it wins over the pin.
	in.Site = "lab"
	if _, err := in.Install(ctx, mkSiteBundle(t, "campus", 3, v2), Options{Node: "lb1"}); !errors.Is(err, ErrOtherSite) || !strings.Contains(err.Error(), "(site in the node configuration)") {
		t.Fatalf("configured site: %v", err)
	}
	if _, err := in.Install(ctx, mkSiteBundle(t, "lab", 4, v2), Options{Node: "lb1"}); err != nil {
		t.Fatal(err)
	}
	if pin, _, _ := in.Store.ReadSite(); pin.Site != "lab" || pin.Serial != 4 {
		t.Errorf("pin after the move %+v", pin)
	}
	// A rollback to the other site's release is refused too.
	if _, err := in.Rollback(ctx, 1, Options{Node: "lb1"}); !errors.Is(err, ErrOtherSite) {
		t.Fatalf("rollback across sites: %v", err)
	}
}

// TestNodeSiteOfAnUnpinnedNode: a node installed before sites were pinned
// belongs to its current release's site.
func TestNodeSiteOfAnUnpinnedNode(t *testing.T) {
	in := newInstaller(t, apply.NewFake())
	if s, _, err := in.NodeSite(); s != "" || err != nil {
		t.Fatalf("fresh node: %q %v", s, err)
	}
	if _, err := in.Install(context.Background(), mkSiteBundle(t, "campus", 1, v1), Options{Node: "lb1"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(in.Store.SitePath()); err != nil {
		t.Fatal(err)
	}
	s, from, err := in.NodeSite()
	if s != "campus" || from != "the site of the current release 1" || err != nil {
		t.Fatalf("unpinned node: %q %q %v", s, from, err)
	}
}
