package drift

import (
	"bytes"
	"errors"
	"maps"
	"net/netip"
	"slices"

	"github.com/lbctl/lbctl/node/netlink/netstate"
	"github.com/lbctl/lbctl/node/nft/nftspec"
	"github.com/lbctl/lbctl/node/plan"
)

// Repair plans the way back from the observed node to the release state
// want: it fixes exactly what Compare reports and touches nothing else. No
// drift gives an empty plan. Pure.
//
// The steps use the install planner's operations and keep its ordering:
// the nftables table is replaced in one batch first, then TPROXY routing
// and missing addresses, then the drifted VIPs (the files of those that
// start or restart written in one step with one daemon-reload; an edited
// config rewritten and reloaded; a wrong drop-in restarts the unit; a unit
// that is not active is started), the health gate of those VIPs, bird.conf
// and the announcements, and last the units and config directories that
// are not in the release and the addresses nobody should have.
//
// Plan.Changed lists the VIPs of the release that are repaired,
// Plan.Removed the units and config directories that are not in it, and
// Plan.Unchanged the release's VIPs left alone.
//
// Every step's undo restores the observed state as far as the operations
// allow: edited or stray files and drop-ins come back byte for byte,
// stopped units are stopped again, stray units started again, addresses
// and TPROXY routing put back, a table with foreign rules gets back what
// was readable of it. What cannot be put back: foreign rules themselves, a
// table that was missing or unreadable (it stays programmed), TPROXY
// routing that was partly there (it is removed whole), and the
// announcements (always the release's own set, before and after; the
// restored bird.conf is configured again by its own undo).
func Repair(want *plan.State, got *Observed) *plan.Plan {
	r := &repair{want: want, got: got,
		p: &plan.Plan{Added: []string{}, Changed: []string{}, Removed: []string{}, Unchanged: []string{}}}
	r.firewall()
	gone, tproxyOff := r.addresses()
	r.vips()
	r.announcements()
	r.removeStrays()
	// 7. Addresses and TPROXY routing nobody should have.
	if len(gone) > 0 {
		r.add(plan.Op{Kind: plan.RemoveAddrs, Addrs: gone}, &plan.Op{Kind: plan.AddAddrs, Addrs: slices.Clone(gone)})
	}
	if tproxyOff {
		r.add(plan.Op{Kind: plan.TProxy, On: false}, &plan.Op{Kind: plan.TProxy, On: true})
	}
	return r.p
}

// repair is the repair plan of an observation being computed.
type repair struct {
	want *plan.State
	got  *Observed
	p    *plan.Plan
}

func (r *repair) add(do plan.Op, undo *plan.Op) {
	r.p.Steps = append(r.p.Steps, plan.Step{Do: do, Undo: undo})
}

// firewall is step 1: the table, replaced as a whole (nft.Kernel.Apply
// deletes and re-adds it in one batch, which also wipes chains and rules
// added by hand).
func (r *repair) firewall() {
	if !firewallDrifted(r.want, r.got) {
		return
	}
	fw := r.want.Firewall
	var undo *plan.Op
	if r.got.FirewallExists && (r.got.FirewallErr == nil || errors.Is(r.got.FirewallErr, nftspec.ErrDrift)) {
		old := r.got.Firewall
		undo = &plan.Op{Kind: plan.Firewall, Firewall: &old}
	}
	r.add(plan.Op{Kind: plan.Firewall, Firewall: &fw}, undo)
}

// addresses is step 2: TPROXY routing and missing addresses, as
// netstate.Ops orders them. It returns what step 7 removes: the addresses
// nobody should have and whether TPROXY routing goes.
func (r *repair) addresses() (gone []netip.Addr, tproxyOff bool) {
	var fresh []netip.Addr
	for _, op := range netstate.Ops(desiredAddresses(r.want), r.got.Addresses) {
		switch op.Kind {
		case netstate.TProxyOn:
			r.add(plan.Op{Kind: plan.TProxy, On: true}, &plan.Op{Kind: plan.TProxy, On: false})
		case netstate.AddVIP:
			fresh = append(fresh, op.VIP.Addr())
		case netstate.RemoveVIP:
			gone = append(gone, op.VIP.Addr())
		case netstate.TProxyOff:
			tproxyOff = true
		}
	}
	if len(fresh) > 0 {
		r.add(plan.Op{Kind: plan.AddAddrs, Addrs: fresh}, &plan.Op{Kind: plan.RemoveAddrs, Addrs: slices.Clone(fresh)})
	}
	return gone, tproxyOff
}

// vips is steps 3 and 4: the release's VIPs whose unit, files or drop-in
// drifted: the files of those that start or restart in one step with one
// daemon-reload, then each unit; nothing is announced before the repaired
// VIPs are healthy.
func (r *repair) vips() {
	write, unwrite := plan.Op{Kind: plan.VIPFiles}, plan.Op{Kind: plan.VIPFiles}
	var units []plan.Step
	for i := range r.want.VIPs {
		v := &r.want.VIPs[i]
		vr := repairVIP(v, r.got)
		if vr.unit == nil {
			r.p.Unchanged = append(r.p.Unchanged, v.Name)
			continue
		}
		r.p.Changed = append(r.p.Changed, v.Name)
		if vr.write {
			write.VIPs = append(write.VIPs, *v)
			if vr.old != nil {
				unwrite.VIPs = append(unwrite.VIPs, *vr.old)
			} else {
				unwrite.Names = append(unwrite.Names, v.Name)
			}
		}
		units = append(units, *vr.unit)
	}
	if len(write.VIPs) > 0 {
		r.add(write, &unwrite)
	}
	r.p.Steps = append(r.p.Steps, units...)
	if len(r.p.Changed) > 0 {
		r.add(plan.Op{Kind: plan.HealthGate, Names: slices.Clone(r.p.Changed)}, nil)
	}
}

// announcements is step 5: bird.conf, then the release's announcements
// (after a new bird.conf, as the install planner does, or when BIRD
// announces a route that is not an announceable VIP).
func (r *repair) announcements() {
	birdDrifted := !bytes.Equal(r.got.BirdConf, r.want.BirdConf)
	if birdDrifted {
		r.add(plan.Op{Kind: plan.Bird, Bird: r.want.BirdConf}, &plan.Op{Kind: plan.Bird, Bird: r.got.BirdConf})
	}
	if birdDrifted || len(foreignRoutes(r.got)) > 0 {
		r.add(plan.Announcement(r.want, r.want.Names()), nil)
	}
}

// removeStrays is step 6: units and config directories that are not in the
// release: the running units stopped, then their files removed (one
// daemon-reload).
func (r *repair) removeStrays() {
	remove, restore := plan.Op{Kind: plan.VIPFiles}, plan.Op{Kind: plan.VIPFiles}
	for _, name := range strays(r.want, r.got) {
		r.p.Removed = append(r.p.Removed, name)
		v := plan.VIP{Name: name}
		if r.got.Units[name].Active {
			r.add(plan.Op{Kind: plan.StopUnit, VIP: &v}, &plan.Op{Kind: plan.StartUnit, VIP: &v})
		}
		if files, ok := r.got.Files[name]; ok || r.got.DropIns[name] {
			remove.Names = append(remove.Names, name)
			restore.VIPs = append(restore.VIPs, observedVIP(v, files, r.got.DropIns[name]))
		}
	}
	if len(remove.Names) > 0 {
		r.add(remove, &restore)
	}
}

// firewallDrifted is Compare's nftables check.
func firewallDrifted(want *plan.State, got *Observed) bool {
	return got.FirewallErr != nil || !got.FirewallExists || len(nftspec.Diff(want.Firewall, got.Firewall)) > 0
}

// desiredAddresses is the address state the release asks for.
func desiredAddresses(want *plan.State) netstate.State {
	desired := netstate.State{TProxy: want.TProxy()}
	for _, v := range want.VIPs {
		for _, a := range v.Addresses {
			desired.VIPs = append(desired.VIPs, netstate.HostPrefix(a))
		}
	}
	return desired
}

// vipRepair is how one of the release's VIPs is repaired.
type vipRepair struct {
	// write: its files and drop-in are written in the VIPFiles step;
	// old is what that step's undo writes back (nil: it removes them).
	write bool
	old   *plan.VIP
	// unit is the step that starts, restarts or reloads its unit; nil
	// when the VIP did not drift.
	unit *plan.Step
}

// repairVIP says how the release's VIP v is repaired.
func repairVIP(v *plan.VIP, got *Observed) vipRepair {
	files, hasDir := got.Files[v.Name]
	dropIn := got.DropIns[v.Name]
	old := observedVIP(*v, files, dropIn)
	r := vipRepair{}
	if hasDir || dropIn {
		r.old = &old
	}
	filesOK, dropInOK := filesEqual(v.Files, files), dropIn == v.Transparent
	switch {
	case !got.Units[v.Name].Active:
		// Not loaded, stopped or failed: started with the release's files,
		// written first (unchanged files stay as they are; the host's
		// health gate only gates VIPs written in this apply, and the
		// template unit is checked); stopping it again is the undo.
		r.write = true
		r.unit = &plan.Step{Do: plan.Op{Kind: plan.StartUnit, VIP: v}, Undo: &plan.Op{Kind: plan.StopUnit, VIP: v}}
	case !dropInOK:
		// The unit's capabilities change: only a restart applies them. Its
		// undo writes the old files back and restarts the old unit, as the
		// install planner's does.
		r.write = true
		r.unit = &plan.Step{Do: plan.Op{Kind: plan.RestartUnit, VIP: v}, Undo: &plan.Op{Kind: plan.RestartVIP, VIP: &old}}
	case !filesOK:
		r.unit = &plan.Step{Do: plan.Op{Kind: plan.ReloadVIP, VIP: v}, Undo: &plan.Op{Kind: plan.ReloadVIP, VIP: &old}}
	}
	return r
}

// observedVIP is v with the files and drop-in as observed.
func observedVIP(v plan.VIP, files map[string][]byte, transparent bool) plan.VIP {
	v.Files, v.Transparent = []plan.File{}, transparent
	for _, path := range slices.Sorted(maps.Keys(files)) {
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
