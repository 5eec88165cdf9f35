//go:build linux

package install_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/node/nft/nftspec"
	"github.com/lbctl/lbctl/systemd"
	"github.com/lbctl/lbctl/test/systemdtest"
)

// Unit is a running (not inactive) unit of the node.
type Unit struct {
	State   string `json:"state"` // active/running, failed/failed, ...
	MainPID uint32 `json:"main_pid"`
}

// State is everything an install may change on the node, read back from
// the kernel, systemd, BIRD and the file system.
type State struct {
	// Firewall is the lbctl table listed back (nft.Kernel.Read).
	Firewall       model.Firewall `json:"firewall"`
	FirewallExists bool           `json:"firewall_exists"`
	FirewallErr    string         `json:"firewall_err,omitempty"`
	// VIPs are lbctl's addresses on lo (netlink ListVIPs), TProxy the
	// TPROXY routing objects found.
	VIPs   []netip.Prefix      `json:"vips"`
	TProxy netlink.TProxyParts `json:"tproxy"`
	// Addrs, Rules and Routes are `ip` listings of every address, policy
	// rule and route (all tables), both families.
	Addrs  string `json:"addrs"`
	Rules  string `json:"rules"`
	Routes string `json:"routes"`
	// Units are the units systemd has that are not inactive: lb-haproxy@
	// instances and bird.service. Failed lists units in state failed.
	Units map[string]Unit `json:"units"`
	// Workers are the children of each unit's main PID (HAProxy's
	// workers: a reload replaces them, the master keeps its PID). Not
	// compared by diff.
	Workers map[string][]int `json:"workers"`
	// Files are the bytes of every file under the VIP directory, the
	// lb-haproxy@ unit files and drop-ins, bird.conf and BIRD's include
	// directory, by path.
	Files map[string][]byte `json:"files"`
	// BirdRoutes are the routes of BIRD's static protocols vips4 and
	// vips6 (nil when BIRD does not answer).
	BirdRoutes []netip.Prefix `json:"bird_routes"`
	BirdErr    string         `json:"bird_err,omitempty"`
	// Current is where the `current` symlink points; Intent is the intent
	// record's content; Announce the announceable set.
	Current  string `json:"current"`
	Intent   []byte `json:"intent,omitempty"`
	Announce []byte `json:"announce,omitempty"`
}

// TestHelperCapture emits the node's state; it runs inside the node.
func TestHelperCapture(t *testing.T) {
	systemdtest.SkipUnlessInside(t)
	m, err := systemd.NewDBus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := capture(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	systemdtest.Emit(t, st)
}

// capture reads the node's state. It runs inside the node's namespaces.
func capture(ctx context.Context, units systemd.Manager) (*State, error) {
	st := &State{Units: map[string]Unit{}, Workers: map[string][]int{}, Files: map[string][]byte{}}
	var errs []error
	k, err := nft.New()
	if err != nil {
		return nil, err
	}
	var ferr error
	st.Firewall, st.FirewallExists, ferr = k.Read()
	if ferr != nil {
		st.FirewallErr = ferr.Error()
	}
	st.Firewall = st.Firewall.Canonical()
	nl, err := netlink.New(netlink.WithInterface("lo"))
	if err != nil {
		return nil, err
	}
	if st.VIPs, err = nl.ListVIPs(); err != nil {
		errs = append(errs, err)
	}
	if st.TProxy, err = nl.TProxy(); err != nil {
		errs = append(errs, err)
	}
	// Listings are sorted by line: the kernel lists addresses in the order
	// they were added, which an undo that removes and adds one back does
	// not keep (and nothing depends on).
	ip := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out))
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		slices.Sort(lines)
		return strings.Join(lines, "\n") + "\n"
	}
	st.Addrs = ip("-o", "-4", "addr", "show") + ip("-o", "-6", "addr", "show")
	st.Rules = ip("-4", "rule", "show") + ip("-6", "rule", "show")
	st.Routes = ip("-4", "route", "show", "table", "all") + ip("-6", "route", "show", "table", "all")

	for _, pattern := range []string{systemd.UnitName("*"), "bird.service"} {
		us, err := units.List(ctx, pattern)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, u := range us {
			if u.ActiveState != "inactive" {
				st.Units[u.Name] = Unit{State: u.ActiveState + "/" + u.SubState, MainPID: u.MainPID}
				st.Workers[u.Name] = children(u.MainPID)
			}
		}
	}

	readTree := func(root string, keep func(rel string) bool) {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if keep != nil && !keep(rel) {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st.Files[p] = b
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	readTree(vipDir, nil)
	readTree(unitDir, func(rel string) bool { return strings.HasPrefix(rel, "lb-haproxy@") })
	readTree(birdInclude, nil)
	if b, err := os.ReadFile(birdConf); err == nil {
		st.Files[birdConf] = b
	}

	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c, err := bird.Dial(bctx, birdSocket); err != nil {
		st.BirdErr = err.Error()
	} else {
		st.BirdRoutes = []netip.Prefix{}
		for _, p := range []string{"vips4", "vips6"} {
			r, err := c.Routes(bctx, p)
			if err != nil {
				st.BirdErr += err.Error()
			}
			st.BirdRoutes = append(st.BirdRoutes, r...)
		}
		c.Close()
		slices.SortFunc(st.BirdRoutes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	}

	st.Current, _ = os.Readlink(filepath.Join(stateDir, "current"))
	st.Intent, _ = os.ReadFile(filepath.Join(stateDir, "intent.json"))
	st.Announce, _ = os.ReadFile(filepath.Join(stateDir, "announce.json"))
	return st, errors.Join(errs...)
}

// children lists the child processes of pid, sorted.
func children(pid uint32) []int {
	if pid == 0 {
		return nil
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// diffOptions says what a comparison ignores.
type diffOptions struct {
	// PIDsMayChange lists units whose main PID may differ (a process that
	// was stopped or restarted cannot come back with its PID).
	PIDsMayChange []string
	// IgnorePIDs ignores every main PID.
	IgnorePIDs bool
}

// diff compares two states field by field and lists every difference.
func diff(want, got *State, o diffOptions) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	if want.FirewallExists != got.FirewallExists || want.FirewallErr != got.FirewallErr {
		add("nftables: table exists %v (err %q), want %v (err %q)", got.FirewallExists, got.FirewallErr, want.FirewallExists, want.FirewallErr)
	}
	for _, d := range nftspec.Diff(want.Firewall, got.Firewall) {
		add("nftables: %s", d)
	}
	if !reflect.DeepEqual(want.Firewall.Canonical(), got.Firewall.Canonical()) {
		add("nftables: listed firewall differs:\n  want %+v\n  got  %+v", want.Firewall, got.Firewall)
	}
	if !slices.Equal(want.VIPs, got.VIPs) {
		add("addresses: VIPs %v, want %v", got.VIPs, want.VIPs)
	}
	if want.TProxy != got.TProxy {
		add("tproxy: %+v, want %+v", got.TProxy, want.TProxy)
	}
	for _, f := range []struct{ name, want, got string }{
		{"ip addr", want.Addrs, got.Addrs}, {"ip rule", want.Rules, got.Rules}, {"ip route", want.Routes, got.Routes},
	} {
		if f.want != f.got {
			add("%s differs:\n%s", f.name, lineDiff(f.want, f.got))
		}
	}
	for _, name := range keys2(want.Units, got.Units) {
		w, wok := want.Units[name]
		g, gok := got.Units[name]
		switch {
		case !gok:
			add("unit %s: not running (want %s)", name, w.State)
		case !wok:
			add("unit %s: %s, want inactive", name, g.State)
		case w.State != g.State:
			add("unit %s: %s, want %s", name, g.State, w.State)
		case w.MainPID != g.MainPID && !o.IgnorePIDs && !slices.Contains(o.PIDsMayChange, name):
			add("unit %s: main PID %d, want %d", name, g.MainPID, w.MainPID)
		}
	}
	for _, p := range keys2(want.Files, got.Files) {
		w, wok := want.Files[p]
		g, gok := got.Files[p]
		switch {
		case !gok:
			add("file %s: missing", p)
		case !wok:
			add("file %s: should not exist", p)
		case !bytes.Equal(w, g):
			add("file %s differs:\n%s", p, lineDiff(string(w), string(g)))
		}
	}
	if !slices.Equal(want.BirdRoutes, got.BirdRoutes) || want.BirdErr != got.BirdErr {
		add("bird routes %v (err %q), want %v (err %q)", got.BirdRoutes, got.BirdErr, want.BirdRoutes, want.BirdErr)
	}
	if want.Current != got.Current {
		add("current -> %q, want %q", got.Current, want.Current)
	}
	if !bytes.Equal(want.Intent, got.Intent) {
		add("intent record %q, want %q", got.Intent, want.Intent)
	}
	if !bytes.Equal(want.Announce, got.Announce) {
		add("announce.json differs:\n%s", lineDiff(string(want.Announce), string(got.Announce)))
	}
	return out
}

func keys2[V any](a, b map[string]V) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// lineDiff lists the lines only in a (-) or only in b (+).
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out = append(out, "  - "+l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out = append(out, "  + "+l)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], "  ...")
	}
	return strings.Join(out, "\n")
}
