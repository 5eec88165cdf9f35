package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/systemd"
)

// unitDirSystemd is the systemd Fake reading a real unit directory: before
// every call it records the unit files written or removed since the last
// one (as systemd would find them on disk), so a start after a drop-in
// changed without a daemon-reload fails as it does on a node.
type unitDirSystemd struct {
	*systemd.Fake
	dir  string
	seen map[string]string
}

func (s *unitDirSystemd) sync() error {
	now := map[string]string{}
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(s.dir, p)
		now[filepath.ToSlash(rel)] = string(b)
		return err
	})
	for name, data := range now {
		if old, ok := s.seen[name]; !ok || old != data {
			s.Install(name)
		}
	}
	for name := range s.seen {
		if _, ok := now[name]; !ok {
			s.Uninstall(name)
		}
	}
	s.seen = now
	return err
}

func (s *unitDirSystemd) DaemonReload(ctx context.Context) error {
	return errors.Join(s.sync(), s.Fake.DaemonReload(ctx))
}

func (s *unitDirSystemd) Start(ctx context.Context, u string) error {
	return errors.Join(s.sync(), s.Fake.Start(ctx, u))
}

func (s *unitDirSystemd) Stop(ctx context.Context, u string) error {
	return errors.Join(s.sync(), s.Fake.Stop(ctx, u))
}

func (s *unitDirSystemd) Restart(ctx context.Context, u string) error {
	return errors.Join(s.sync(), s.Fake.Restart(ctx, u))
}

type nopFirewall struct{}

func (nopFirewall) Apply(model.Firewall) error { return nil }

type memAddresses struct{ addrs map[netip.Addr]bool }

func (m *memAddresses) AddVIPs(a []netip.Addr) error {
	for _, x := range a {
		m.addrs[x] = true
	}
	return nil
}

func (m *memAddresses) RemoveVIPs(a []netip.Addr) error {
	for _, x := range a {
		delete(m.addrs, x)
	}
	return nil
}

func (m *memAddresses) SetTProxy(bool) error { return nil }

// gated is the Host with a health gate that asks the systemd Fake whether
// the units run (the real gate probes listeners), and an announcement that
// can be made to fail once.
type gated struct {
	*Host
	failAnnounce bool
}

var errAnnounce = errors.New("announce refused")

func (g *gated) HealthGate(ctx context.Context, vips []string) error {
	var errs []error
	for _, v := range vips {
		st, err := g.Units.State(ctx, systemd.UnitName(v))
		if err != nil || !st.Active() {
			errs = append(errs, fmt.Errorf("vip %s: not running (%v, %v)", v, st, err))
		}
	}
	return errors.Join(errs...)
}

func (g *gated) Announce(ctx context.Context, vips []plan.VIP) error {
	if g.failAnnounce {
		g.failAnnounce = false
		return errAnnounce
	}
	return g.Host.Announce(ctx, vips)
}

func newReloadHost(t *testing.T) (*gated, *unitDirSystemd) {
	t.Helper()
	root := t.TempDir()
	store, err := release.Open(filepath.Join(root, "releases"))
	if err != nil {
		t.Fatal(err)
	}
	units := filepath.Join(root, "units")
	sd := &unitDirSystemd{Fake: systemd.NewFake(), dir: units}
	h := &Host{
		Paths: Paths{VIPDir: filepath.Join(root, "vips"), UnitDir: units,
			BirdConf: filepath.Join(root, "bird", "bird.conf"), BirdIncludeDir: filepath.Join(root, "bird", "lbctl")},
		Units: sd, NFT: nopFirewall{}, Addresses: &memAddresses{addrs: map[netip.Addr]bool{}}, Store: store,
	}
	return &gated{Host: h}, sd
}

// TestColdInstallReloadsSystemdOnce applies the first install of N VIPs
// (a third of them transparent, with a drop-in each) through the real
// Host, with the systemd Fake reading the unit directory: systemd is
// reloaded once and every unit runs. The same install failing at its last
// step is undone with one more daemon-reload: no unit runs, no VIP file or
// drop-in is left, and systemd has read the unit directory as it is.
func TestColdInstallReloadsSystemdOnce(t *testing.T) {
	const n = 9
	next := &plan.State{Serial: 1, BirdConf: []byte("router id 192.0.2.1;\n")}
	for i := range n {
		a := netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 100+i))
		next.VIPs = append(next.VIPs, plan.VIP{Name: a.String(), Addresses: []netip.Addr{a}, Transparent: i%3 == 0,
			Files: []plan.File{{Path: "haproxy.cfg", Data: []byte("global # " + a.String() + "\n")}}})
	}
	steps := plan.Compute(nil, next).Steps
	ctx := context.Background()

	h, sd := newReloadHost(t)
	if err := apply.Apply(ctx, h, steps); err != nil {
		t.Fatal(err)
	}
	if sd.Reloads != 1 {
		t.Errorf("cold install of %d VIPs: %d daemon-reloads, want 1", n, sd.Reloads)
	}
	units, err := sd.List(ctx, "lb-haproxy@*.service")
	if err != nil {
		t.Fatal(err)
	}
	var pids []uint32
	for _, u := range units {
		if !u.Active() || u.MainPID == 0 || slices.Contains(pids, u.MainPID) {
			t.Errorf("unit %s", u)
		}
		pids = append(pids, u.MainPID)
	}
	if len(units) != n {
		t.Errorf("%d units after the cold install, want %d:\n%s", len(units), n, sd)
	}
	dropIns, _ := filepath.Glob(filepath.Join(h.paths().UnitDir, "lb-haproxy@*.service.d", systemd.TransparentDropInName))
	if len(dropIns) != (n+2)/3 {
		t.Errorf("%d transparent drop-ins, want %d", len(dropIns), (n+2)/3)
	}

	h, sd = newReloadHost(t)
	h.failAnnounce = true
	err = apply.Apply(ctx, h, steps)
	if !errors.Is(err, errAnnounce) || !errors.Is(err, apply.ErrRolledBack) {
		t.Fatalf("err = %v", err)
	}
	if sd.Reloads != 2 {
		t.Errorf("cold install and its undo: %d daemon-reloads, want 2", sd.Reloads)
	}
	if units, _ := sd.List(ctx, "lb-haproxy@*.service"); slices.ContainsFunc(units, systemd.UnitState.Active) {
		t.Errorf("units after the undone cold install: %v", units)
	}
	vipDirs, _ := os.ReadDir(h.paths().VIPDir)
	dropIns, _ = filepath.Glob(filepath.Join(h.paths().UnitDir, "lb-haproxy@*.service.d", "*"))
	if len(vipDirs) != 0 || len(dropIns) != 0 {
		t.Errorf("after the undone cold install: %d VIP directories, drop-ins %v", len(vipDirs), dropIns)
	}
	if err := sd.sync(); err != nil {
		t.Fatal(err)
	}
	// systemd knows the template only, as read by its last reload.
	for _, l := range strings.Split(strings.TrimSpace(sd.String()), "\n") {
		if strings.HasPrefix(l, "file ") && l != "file "+systemd.TemplateName || l == "daemon-reload needed" {
			t.Errorf("systemd after the undone cold install:\n%s", sd)
			break
		}
	}
}
