//go:build linux

package install_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/node/nft/nftspec"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/systemd"
	"github.com/lbctl/lbctl/test/systemdtest"
)

// loadState reads a staged release's node state through the namespace's
// root.
func (n *node) loadState(serial string) *plan.State {
	n.t.Helper()
	b, err := os.ReadFile(n.sd.RootPath(filepath.Join(stateDir, "releases", serial, "state.json")))
	if err != nil {
		n.t.Fatal(err)
	}
	var st plan.State
	if err := json.Unmarshal(b, &st); err != nil {
		n.t.Fatal(err)
	}
	return &st
}

// history reads the install log.
func (n *node) history() []release.LogEntry {
	n.t.Helper()
	s := &release.Store{Root: n.sd.RootPath(stateDir)}
	h, err := s.History()
	if err != nil {
		n.t.Fatal(err)
	}
	return h
}

// checkRelease checks that the captured state is release want as it
// should run: every VIP unit running, its files in place, its addresses,
// the firewall, bird.conf, announced routes and `current`.
func checkRelease(t *testing.T, want *plan.State, got *State) {
	t.Helper()
	var vips []string
	for _, v := range want.VIPs {
		u := systemd.UnitName(v.Name)
		if s, ok := got.Units[u]; !ok || s.State != "active/running" || s.MainPID == 0 {
			t.Errorf("unit %s: %+v, want active/running", u, s)
		}
		for _, f := range v.Files {
			p := filepath.Join(vipDir, v.Name, f.Path)
			if string(got.Files[p]) != string(f.Data) {
				t.Errorf("%s differs from release %d", p, want.Serial)
			}
		}
		for _, a := range v.Addresses {
			vips = append(vips, netip.PrefixFrom(a, a.BitLen()).String())
		}
		drop := filepath.Join(unitDir, systemd.DropInDir(v.Name), systemd.TransparentDropInName)
		if _, ok := got.Files[drop]; ok != v.Transparent {
			t.Errorf("vip %s: transparent drop-in present %v, want %v", v.Name, ok, v.Transparent)
		}
	}
	for u, s := range got.Units {
		if name, ok := systemd.InstanceOf(u); ok && want.VIP(name) == nil {
			t.Errorf("unit %s %s is not in release %d", u, s.State, want.Serial)
		}
	}
	for p := range got.Files {
		if rel, ok := strings.CutPrefix(p, vipDir+"/"); ok {
			if name, _, _ := strings.Cut(rel, "/"); want.VIP(name) == nil {
				t.Errorf("%s left from another release", p)
			}
		}
	}
	slices.Sort(vips)
	var gotVIPs []string
	for _, p := range got.VIPs {
		gotVIPs = append(gotVIPs, p.String())
	}
	slices.Sort(gotVIPs)
	if !slices.Equal(vips, gotVIPs) {
		t.Errorf("VIP addresses on lo %v, want %v", gotVIPs, vips)
	}
	if got.TProxy.All() != want.TProxy() || (got.TProxy.Any() && !got.TProxy.All()) {
		t.Errorf("TPROXY routing %+v, want all %v", got.TProxy, want.TProxy())
	}
	if !got.FirewallExists || got.FirewallErr != "" {
		t.Errorf("nftables table: exists %v, err %q", got.FirewallExists, got.FirewallErr)
	}
	if d := diffFirewall(want, got); len(d) > 0 {
		t.Errorf("nftables table listed back differs from release %d:\n%s", want.Serial, strings.Join(d, "\n"))
	}
	if string(got.Files[birdConf]) != string(want.BirdConf) {
		t.Errorf("bird.conf differs from release %d", want.Serial)
	}
	var routes []string
	for _, p := range got.BirdRoutes {
		routes = append(routes, p.String())
	}
	slices.Sort(routes)
	if got.BirdErr != "" || !slices.Equal(routes, vips) {
		t.Errorf("BIRD static routes %v (err %q), want %v", routes, got.BirdErr, vips)
	}
	if wantCur := filepath.Join("releases", itoa(want.Serial)); got.Current != wantCur {
		t.Errorf("current -> %q, want %q", got.Current, wantCur)
	}
	if len(got.Intent) > 0 {
		t.Errorf("intent record left: %s", got.Intent)
	}
}

func diffFirewall(want *plan.State, got *State) []string {
	return nftspec.Diff(want.Firewall, got.Firewall)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestColdInstall installs campus on a node that never had a release.
func TestColdInstall(t *testing.T) {
	systemdtest.SkipUnlessRoot(t)
	r1 := tree(t, nil)
	site := resolve(t, r1)
	n := newNode(t, site)
	before := n.capture()
	if len(before.VIPs) != 0 || before.FirewallExists || before.Current != "" {
		t.Fatalf("node not fresh: %+v", before)
	}
	out, took := n.install(n.put(build(t, n.keys, r1, 1), "1"))
	t.Logf("cold install, lbctl install wall time: %v: %s", took.Round(time.Millisecond), lastLines(out, 1))
	want := n.loadState("1")
	if len(want.VIPs) != len(site.VIPs) {
		t.Fatalf("release 1 has %d VIPs for lb1, the site %d", len(want.VIPs), len(site.VIPs))
	}
	got := n.capture()
	checkRelease(t, want, got)
	if _, ok := got.Units["bird.service"]; !ok {
		t.Errorf("bird.service not running after the first install")
	}
	h := n.history()
	if len(h) != 1 || h[0].Result != "committed" || h[0].To != 1 {
		t.Errorf("install log %+v, want one committed install of 1", h)
	}

	// Traffic: typo3 www through 192.0.2.10:80 and its IPv6 address.
	for _, vip := range []string{"192.0.2.10:80", "[2001:db8:10::10]:80"} {
		code, body, err := n.get("http://"+vip, "www.campus.example")
		if err != nil || code != 200 || !strings.Contains(body, "backend=be-203.0.113.1") || !strings.Contains(body, "host=www.campus.example") {
			t.Errorf("GET %s: %d %q %v", vip, code, body, err)
		}
	}
	// wiki redirects to HTTPS on port 80.
	if code, _, err := n.get("http://192.0.2.11:80", "wiki.campus.example"); err != nil || code/100 != 3 {
		t.Errorf("GET wiki: %d %v, want a redirect", code, err)
	}
}
