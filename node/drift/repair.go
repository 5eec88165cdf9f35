package drift

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"

	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/node/plan"
)

// Repair plans the way back from the observed node to the release state
// want: it fixes exactly what Compare reports and touches nothing else. No
// drift gives an empty plan. Pure.
//
// The steps use the install planner's operations and keep its ordering:
// the nftables table is replaced in one batch first, then TPROXY routing
// and missing addresses, then the drifted VIPs (rewritten and reloaded; a
// wrong drop-in restarts the unit; a unit that is not active is started),
// the health gate of those VIPs, bird.conf and the announcements, and
// last the units and config directories that are not in the release and
// the addresses nobody should have.
//
// Plan.Changed lists the VIPs of the release that are repaired,
// Plan.Removed the units and config directories that are not in it, and
// Plan.Unchanged the release's VIPs left alone.
//
// Every step's undo restores the observed state as far as the operations
// allow: an edited config comes back byte for byte, a wrong drop-in is put
// back, a table with foreign rules gets back what was readable of it. Some
// steps have no undo, because the only operation that would undo them also
// destroys what the release needs: a unit that was not active with its
// config directory present stays started (StopVIP would remove its config),
// a table that was missing or unreadable stays programmed, a stray config
// directory without a running unit stays removed, and the announcements
// (always the release's own set, before and after) are not undone.
func Repair(want *plan.State, got *Observed) *plan.Plan {
	p := &plan.Plan{Added: []string{}, Changed: []string{}, Removed: []string{}, Unchanged: []string{}}
	add := func(do plan.Op, undo *plan.Op) { p.Steps = append(p.Steps, plan.Step{Do: do, Undo: undo}) }

	// 1. The table, replaced as a whole (nft.Kernel.Apply deletes and
	// re-adds it in one batch, which also wipes chains and rules added by
	// hand).
	if firewallDrifted(want, got) {
		fw := want.Firewall
		var undo *plan.Op
		if got.FirewallExists && (got.FirewallErr == nil || errors.Is(got.FirewallErr, nft.ErrDrift)) {
			old := got.Firewall
			undo = &plan.Op{Kind: plan.Firewall, Firewall: &old}
		}
		add(plan.Op{Kind: plan.Firewall, Firewall: &fw}, undo)
	}

	// 2. TPROXY routing and addresses, as netlink.Plan orders them.
	var fresh, gone []netip.Addr
	tproxyOff := false
	for _, op := range netlink.Plan(desiredAddresses(want), got.Addresses) {
		switch op.Kind {
		case netlink.TProxyOn:
			add(plan.Op{Kind: plan.TProxy, On: true}, &plan.Op{Kind: plan.TProxy, On: false})
		case netlink.AddVIP:
			fresh = append(fresh, op.VIP.Addr())
		case netlink.RemoveVIP:
			gone = append(gone, op.VIP.Addr())
		case netlink.TProxyOff:
			tproxyOff = true
		}
	}
	if len(fresh) > 0 {
		add(plan.Op{Kind: plan.AddAddrs, Addrs: fresh}, &plan.Op{Kind: plan.RemoveAddrs, Addrs: slices.Clone(fresh)})
	}

	// 3. The release's VIPs whose unit, files or drop-in drifted.
	for i := range want.VIPs {
		v := &want.VIPs[i]
		do, undo := repairVIP(v, got)
		if do == nil {
			p.Unchanged = append(p.Unchanged, v.Name)
			continue
		}
		p.Changed = append(p.Changed, v.Name)
		add(*do, undo)
	}
	// 4. Nothing is announced before the repaired VIPs are healthy.
	if len(p.Changed) > 0 {
		add(plan.Op{Kind: plan.HealthGate, Names: slices.Clone(p.Changed)}, nil)
	}

	// 5. bird.conf, then the release's announcements (after a new
	// bird.conf, as the install planner does, or when BIRD announces a
	// route that is not an announceable VIP).
	birdDrifted := !bytes.Equal(got.BirdConf, want.BirdConf)
	if birdDrifted {
		add(plan.Op{Kind: plan.Bird, Bird: want.BirdConf}, &plan.Op{Kind: plan.Bird, Bird: got.BirdConf})
	}
	if birdDrifted || len(foreignRoutes(got)) > 0 {
		add(announcement(want), nil)
	}

	// 6. Units and config directories that are not in the release.
	for _, name := range strays(want, got) {
		p.Removed = append(p.Removed, name)
		var undo *plan.Op
		if files, ok := got.Files[name]; ok && got.Units[name].Active {
			old := observedVIP(plan.VIP{Name: name}, files, got.DropIns[name])
			undo = &plan.Op{Kind: plan.StartVIP, VIP: &old}
		}
		add(plan.Op{Kind: plan.StopVIP, VIP: &plan.VIP{Name: name}}, undo)
	}

	// 7. Addresses and TPROXY routing nobody should have.
	if len(gone) > 0 {
		add(plan.Op{Kind: plan.RemoveAddrs, Addrs: gone}, &plan.Op{Kind: plan.AddAddrs, Addrs: slices.Clone(gone)})
	}
	if tproxyOff {
		add(plan.Op{Kind: plan.TProxy, On: false}, &plan.Op{Kind: plan.TProxy, On: true})
	}
	return p
}

// firewallDrifted is Compare's nftables check.
func firewallDrifted(want *plan.State, got *Observed) bool {
	return got.FirewallErr != nil || !got.FirewallExists || len(nft.Diff(want.Firewall, got.Firewall)) > 0
}

// desiredAddresses is the address state the release asks for.
func desiredAddresses(want *plan.State) netlink.State {
	desired := netlink.State{TProxy: want.TProxy()}
	for _, v := range want.VIPs {
		for _, a := range v.Addresses {
			desired.VIPs = append(desired.VIPs, netlink.HostPrefix(a))
		}
	}
	return desired
}

// repairVIP returns the operation that puts the release's VIP v back, and
// its undo, or nil when v did not drift.
func repairVIP(v *plan.VIP, got *Observed) (do, undo *plan.Op) {
	u, loaded := got.Units[v.Name]
	files, hasDir := got.Files[v.Name]
	old := observedVIP(*v, files, got.DropIns[v.Name])
	switch {
	case !u.Active:
		// StartVIP and RestartVIP write the files and the drop-in and
		// reload systemd first. A unit systemd has not loaded is started;
		// one in another state (failed, inactive, stuck activating) is
		// restarted. With no config directory before, stopping it and
		// removing what was written is an exact undo.
		kind := plan.RestartVIP
		if !loaded {
			kind = plan.StartVIP
		}
		if !hasDir {
			undo = &plan.Op{Kind: plan.StopVIP, VIP: v}
		}
		return &plan.Op{Kind: kind, VIP: v}, undo
	case got.DropIns[v.Name] != v.Transparent:
		// The unit's capabilities change: only a restart applies them.
		return &plan.Op{Kind: plan.RestartVIP, VIP: v}, &plan.Op{Kind: plan.RestartVIP, VIP: &old}
	case !filesEqual(v.Files, files):
		return &plan.Op{Kind: plan.ReloadVIP, VIP: v}, &plan.Op{Kind: plan.ReloadVIP, VIP: &old}
	}
	return nil, nil
}

// observedVIP is v with the files and drop-in as observed.
func observedVIP(v plan.VIP, files map[string][]byte, transparent bool) plan.VIP {
	v.Files, v.Transparent = []plan.File{}, transparent
	for _, path := range sortedKeys(files) {
		v.Files = append(v.Files, plan.File{Path: path, Data: files[path]})
	}
	return v
}

// filesEqual reports whether the observed files are exactly the release's.
func filesEqual(want []plan.File, got map[string][]byte) bool {
	if len(want) != len(got) {
		return false
	}
	for _, f := range want {
		b, ok := got[f.Path]
		if !ok || !bytes.Equal(b, f.Data) {
			return false
		}
	}
	return true
}

// foreignRoutes are the routes BIRD announces that are not announceable.
func foreignRoutes(got *Observed) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range got.Announced {
		if !slices.Contains(got.MayAnnounce, p) {
			out = append(out, p)
		}
	}
	return out
}

// strays are the VIPs not in the release whose unit is active or whose
// config directory is left, sorted.
func strays(want *plan.State, got *Observed) []string {
	var out []string
	for name, u := range got.Units {
		if want.VIP(name) == nil && u.Active {
			out = append(out, name)
		}
	}
	for name := range got.Files {
		if want.VIP(name) == nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// announcement makes exactly the release's VIP addresses announceable, as
// the install planner's last Announce does.
func announcement(s *plan.State) plan.Op {
	op := plan.Op{Kind: plan.Announce, Names: s.Names(), VIPs: []plan.VIP{}}
	for _, n := range op.Names {
		v := *s.VIP(n)
		v.Files = nil
		op.VIPs = append(op.VIPs, v)
		op.Addrs = append(op.Addrs, v.Addresses...)
	}
	slices.SortFunc(op.Addrs, netip.Addr.Compare)
	op.Addrs = slices.Compact(op.Addrs)
	return op
}
