// Package drift compares what a node runs with what its current release
// says it should run: the nftables table, VIP addresses and TPROXY routing,
// the HAProxy units, their config files and drop-ins, bird.conf and the
// routes BIRD announces. Compare is a pure function of the release and the
// observation, so a test can call it with literals; Repair plans the way
// back (repair.go). The package is pure and links no kernel library:
// node/drift/observe reads the node into an Observed.
package drift

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/netlink/netstate"
	"github.com/lbctl/lbctl/node/nft/nftspec"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/systemd/unitname"
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
	// rules in it: nftspec.ErrDrift).
	FirewallErr error
	Addresses   netstate.State
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

	for _, d := range netstate.Diff(desiredAddresses(want), got.Addresses) {
		add("addresses: %s", d)
	}

	for _, v := range want.VIPs {
		u, ok := got.Units[v.Name]
		switch {
		case !ok:
			add("unit %s: not loaded", unitname.Unit(v.Name))
		case !u.Active:
			add("unit %s: %s", unitname.Unit(v.Name), u.State)
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
			add("unit %s: running but not in release %d", unitname.Unit(name), want.Serial)
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
