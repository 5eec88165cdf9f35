// Package drift compares what a node runs with what its current release
// says it should run: the nftables table, VIP addresses and TPROXY routing,
// the HAProxy units, their config files and drop-ins, bird.conf and the
// routes BIRD announces. Observe reads the node (side effects only);
// Compare is a pure function of the release and the observation, so a
// test can call it with literals.
package drift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/node/nft/nftspec"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/systemd"
)

// Unit is an observed lb-haproxy@ unit.
type Unit struct {
	Active  bool
	MainPID uint32
	State   string
}

// Observed is the node as read back.
type Observed struct {
	Firewall       model.Firewall
	FirewallExists bool
	// FirewallErr is an error reading the table (for example foreign
	// rules in it: nft.ErrDrift).
	FirewallErr error
	Addresses   netlink.State
	// Units by VIP name (lb-haproxy@ instances systemd has loaded).
	Units map[string]Unit
	// Files by VIP name, then path relative to the VIP's directory.
	Files map[string]map[string][]byte
	// DropIns is the set of VIPs with a transparent drop-in.
	DropIns  map[string]bool
	BirdConf []byte
	// Announced are the routes in BIRD's static VIP protocols; nil when
	// BIRD could not be asked.
	Announced []netip.Prefix
	// MayAnnounce are the prefixes BIRD may announce (announceable, not
	// drained); the agent holds back unhealthy ones, which is no drift.
	MayAnnounce []netip.Prefix
}

// Compare lists every difference between the release state want and the
// observation; empty means no drift. Pure.
func Compare(want *plan.State, got *Observed) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }

	switch {
	case got.FirewallErr != nil:
		add("nftables: %v", got.FirewallErr)
	case !got.FirewallExists:
		add("nftables: table inet %s missing", model.NFTTable)
	default:
		for _, d := range nftspec.Diff(want.Firewall, got.Firewall) {
			add("nftables: %s", d)
		}
	}

	for _, d := range netlink.Diff(desiredAddresses(want), got.Addresses) {
		add("addresses: %s", d)
	}

	for _, v := range want.VIPs {
		u, ok := got.Units[v.Name]
		switch {
		case !ok:
			add("unit %s: not loaded", systemd.UnitName(v.Name))
		case !u.Active:
			add("unit %s: %s", systemd.UnitName(v.Name), u.State)
		}
		files := got.Files[v.Name]
		for _, f := range v.Files {
			b, ok := files[f.Path]
			switch {
			case !ok:
				add("vip %s: %s missing", v.Name, f.Path)
			case !bytes.Equal(b, f.Data):
				add("vip %s: %s differs from release %d", v.Name, f.Path, want.Serial)
			}
		}
		for p := range files {
			if !slices.ContainsFunc(v.Files, func(f plan.File) bool { return f.Path == p }) {
				add("vip %s: unexpected file %s", v.Name, p)
			}
		}
		if got.DropIns[v.Name] != v.Transparent {
			add("vip %s: transparent drop-in present=%v, want %v", v.Name, got.DropIns[v.Name], v.Transparent)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got.Units)) {
		if want.VIP(name) == nil && got.Units[name].Active {
			add("unit %s: running but not in release %d", systemd.UnitName(name), want.Serial)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got.Files)) {
		if want.VIP(name) == nil {
			add("vip %s: config directory left from another release", name)
		}
	}
	if !bytes.Equal(got.BirdConf, want.BirdConf) {
		add("bird.conf differs from release %d", want.Serial)
	}
	for _, p := range foreignRoutes(got) {
		add("bird: announces %s, which is not an announceable VIP of this node", p)
	}
	slices.Sort(out)
	return out
}

// Sources are what Observe reads from.
type Sources struct {
	NFT   nft.Conn
	Net   netlink.Conn
	Units systemd.Manager
	// VIPDir, UnitDir and BirdConf are the node's paths.
	VIPDir, UnitDir, BirdConf string
	// Routes returns BIRD's announced VIP routes; nil skips the check.
	Routes func(ctx context.Context) ([]netip.Prefix, error)
}

// Observe reads the node. Independent read failures are collected.
func Observe(ctx context.Context, s Sources) (*Observed, error) {
	o := &Observed{Units: map[string]Unit{}, Files: map[string]map[string][]byte{}, DropIns: map[string]bool{}}
	var errs []error
	o.Firewall, o.FirewallExists, o.FirewallErr = s.NFT.Read()
	if st, err := netlink.Read(s.Net); err != nil {
		errs = append(errs, fmt.Errorf("addresses: %w", err))
	} else {
		o.Addresses = st
	}
	if us, err := s.Units.List(ctx, "lb-haproxy@*.service"); err != nil {
		errs = append(errs, fmt.Errorf("units: %w", err))
	} else {
		for _, u := range us {
			if vip, ok := systemd.InstanceOf(u.Name); ok {
				o.Units[vip] = Unit{Active: u.Active(), MainPID: u.MainPID, State: u.ActiveState + "/" + u.SubState}
			}
		}
	}
	ents, err := os.ReadDir(s.VIPDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.VIPDir, e.Name())
		files := map[string][]byte{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files[filepath.ToSlash(rel)] = b
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		o.Files[e.Name()] = files
	}
	if ents, err := os.ReadDir(s.UnitDir); err == nil {
		for _, e := range ents {
			name := strings.TrimSuffix(e.Name(), ".d")
			if vip, ok := systemd.InstanceOf(name); ok && e.IsDir() {
				if _, err := os.Stat(filepath.Join(s.UnitDir, e.Name(), systemd.TransparentDropInName)); err == nil {
					o.DropIns[vip] = true
				}
			}
		}
	}
	o.BirdConf, err = os.ReadFile(s.BirdConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if s.Routes != nil {
		r, err := s.Routes(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("bird: %w", err))
		} else {
			o.Announced = r
			if o.Announced == nil {
				o.Announced = []netip.Prefix{}
			}
		}
	}
	return o, errors.Join(errs...)
}
