// Package plan is the pure planner of an install: from the node state of the
// current release and the node state of the new one it computes the ordered
// operations that take the node from one to the other, each with the
// operation that undoes it.
//
// The planner never reads the host: no file system, clock, network or exec.
// The ordering never blackholes traffic: a removed VIP is withdrawn before it
// is stopped and its address removed; a new or changed VIP has its address
// and HAProxy up and healthy before its route is announced.
//
// systemd re-reads unit files once per batch, not once per VIP: the files of
// every new VIP and of every VIP whose unit changes are written in one step
// that ends with a single daemon-reload, and only then are the units
// started; removed VIPs are stopped one by one and their files removed in
// one step. The start, stop and restart of a unit are steps of their own
// (StartUnit, StopUnit, RestartUnit), so a failure while files are written
// leaves no unit job to undo: a restart is undone only once its step began.
package plan

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health"
)

// File is one rendered file of a VIP, relative to the VIP's config directory.
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

// VIP is the node-side state of one VIP.
type VIP struct {
	Name      string       `json:"name"`
	Addresses []netip.Addr `json:"addresses"`
	// Files are the rendered files of /etc/lbctl/vips/<Name>/, sorted by Path.
	Files []File `json:"files"`
	// Transparent VIPs get the CAP_NET_ADMIN drop-in and need TPROXY routing.
	Transparent bool `json:"transparent"`
	// Probes are the active probes that must pass for the VIP to be
	// healthy, sorted by address.
	Probes []health.Probe `json:"probes,omitempty"`
	// Backends are the HAProxy backends of the VIP with the number of
	// servers that must be up.
	Backends []health.Backend `json:"backends,omitempty"`
	// SendsEvents records, for a VIP without its files (an Announce op),
	// what sendsEvents read from its haproxy.cfg.
	SendsEvents bool `json:"sends_events,omitempty"`
}

// Health returns the VIP's health specification: what the agent and the
// install's health gate evaluate.
func (v *VIP) Health() health.VIP {
	return health.VIP{Name: v.Name, Addresses: v.Addresses, Probes: v.Probes, Backends: v.Backends,
		Events: v.SendsEvents || v.sendsEvents()}
}

// sendsEvents reports whether the VIP's haproxy.cfg sends its server and
// backend state changes to the agent: bundle/render/haproxy writes a
// "log unix@.../haproxy-events.sock" line (issue 16); a
// release rendered before does not, and the agent then reads the VIP's
// state every interval as it did.
func (v *VIP) sendsEvents() bool {
	for _, f := range v.Files {
		if f.Path == "haproxy.cfg" {
			return bytes.Contains(f.Data, []byte("/haproxy-events.sock "))
		}
	}
	return false
}

// State is the node state a release asks for.
type State struct {
	Serial   uint64         `json:"serial"`
	VIPs     []VIP          `json:"vips"` // sorted by Name
	Firewall model.Firewall `json:"firewall"`
	// BirdConf is the node's whole bird.conf.
	BirdConf []byte `json:"bird_conf"`
	// Interface carries the VIP addresses (the node profile's).
	Interface string `json:"interface,omitempty"`
}

// TProxy reports whether the state needs TPROXY policy routing.
func (s *State) TProxy() bool {
	for _, v := range s.VIPs {
		if v.Transparent {
			return true
		}
	}
	return false
}

// VIP returns the VIP with the given name, or nil.
func (s *State) VIP(name string) *VIP {
	if s == nil {
		return nil
	}
	for i := range s.VIPs {
		if s.VIPs[i].Name == name {
			return &s.VIPs[i]
		}
	}
	return nil
}

// Names returns the VIP names of the state, sorted.
func (s *State) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.VIPs))
	for _, v := range s.VIPs {
		out = append(out, v.Name)
	}
	slices.Sort(out)
	return out
}

// Kind is the kind of an operation.
type Kind string

// Operation kinds. Every kind is idempotent when applied by the applier:
// applying an operation that already holds changes nothing, so an undo may be
// run for an operation that was only partly applied.
const (
	// Announce makes exactly the addresses in Addrs (of the VIPs in Names)
	// announceable; routes of unhealthy or drained VIPs are still held back
	// by the applier.
	Announce Kind = "announce"
	// Wait lets connections to withdrawn VIPs drain.
	Wait Kind = "drain-wait"
	// VIPFiles writes the config directory and unit drop-in of every VIP in
	// VIPs, removes those of the VIPs in Names, then makes systemd re-read
	// its unit files with one daemon-reload.
	VIPFiles Kind = "vip-files"
	// StartUnit, StopUnit and RestartUnit only act on the VIP's unit: its
	// files were written (or are removed) by a VIPFiles step. A restart is
	// needed when the unit's capabilities change; it is undone by a
	// RestartVIP of the old VIP.
	StartUnit   Kind = "start-unit"
	StopUnit    Kind = "stop-unit"
	RestartUnit Kind = "restart-unit"
	// StopVIP stops the VIP's unit, removes its config and drop-in and
	// runs a daemon-reload.
	StopVIP Kind = "stop-vip"
	// StartVIP writes the VIP's config and drop-in, runs a daemon-reload
	// and starts its unit.
	StartVIP Kind = "start-vip"
	// ReloadVIP writes the VIP's config and reloads its unit (hitless; the
	// unit file does not change, so systemd needs no daemon-reload).
	ReloadVIP Kind = "reload-vip"
	// RestartVIP writes config and drop-in, runs a daemon-reload and
	// restarts the unit.
	RestartVIP Kind = "restart-vip"
	// AddAddrs and RemoveAddrs change VIP addresses on the VIP interface.
	AddAddrs    Kind = "add-addresses"
	RemoveAddrs Kind = "remove-addresses"
	// Firewall replaces the lbctl nftables table in one batch.
	Firewall Kind = "firewall"
	// TProxy adds (On) or removes the TPROXY policy rule and local table.
	TProxy Kind = "tproxy"
	// Bird writes bird.conf and reconfigures BIRD.
	Bird Kind = "bird"
	// HealthGate waits until every VIP in Names is healthy.
	HealthGate Kind = "health-gate"
)

// Op is one step of a plan. Which fields are set depends on Kind.
type Op struct {
	Kind Kind `json:"kind"`
	VIP  *VIP `json:"vip,omitempty"`
	// VIPs of an Announce: the announceable VIPs without their files; of
	// a VIPFiles: the VIPs whose files are written.
	VIPs []VIP `json:"vips,omitempty"`
	// Names of an Announce, HealthGate or Wait: the VIPs concerned; of a
	// VIPFiles: the VIPs whose files are removed.
	Names    []string        `json:"names,omitempty"`
	Addrs    []netip.Addr    `json:"addrs,omitempty"`
	Firewall *model.Firewall `json:"firewall,omitempty"`
	On       bool            `json:"on,omitempty"`
	Bird     []byte          `json:"bird,omitempty"`
}

// String describes the operation in one line for operators.
func (o Op) String() string {
	switch o.Kind {
	case Announce, HealthGate, Wait:
		return fmt.Sprintf("%s [%s]", o.Kind, strings.Join(o.Names, " "))
	case StopVIP, StartVIP, ReloadVIP, RestartVIP, StartUnit, StopUnit, RestartUnit:
		return fmt.Sprintf("%s %s", o.Kind, o.VIP.Name)
	case VIPFiles:
		var b strings.Builder
		b.WriteString(string(o.Kind))
		if len(o.VIPs) > 0 {
			names := make([]string, len(o.VIPs))
			for i, v := range o.VIPs {
				names[i] = v.Name
			}
			fmt.Fprintf(&b, " write [%s]", strings.Join(names, " "))
		}
		if len(o.Names) > 0 {
			fmt.Fprintf(&b, " remove [%s]", strings.Join(o.Names, " "))
		}
		b.WriteString(", daemon-reload")
		return b.String()
	case AddAddrs, RemoveAddrs:
		s := make([]string, len(o.Addrs))
		for i, a := range o.Addrs {
			s[i] = a.String()
		}
		return fmt.Sprintf("%s %s", o.Kind, strings.Join(s, " "))
	case Firewall:
		return fmt.Sprintf("%s (%d+%d listeners)", o.Kind, len(o.Firewall.Accept4), len(o.Firewall.Accept6))
	case TProxy:
		if o.On {
			return "tproxy on"
		}
		return "tproxy off"
	default:
		return string(o.Kind)
	}
}

// Step is an operation and the operation that undoes it (nil when nothing is
// to undo).
type Step struct {
	Do   Op  `json:"do"`
	Undo *Op `json:"undo,omitempty"`
}

// Plan is what an install does.
type Plan struct {
	Added     []string `json:"added"`
	Changed   []string `json:"changed"`
	Removed   []string `json:"removed"`
	Unchanged []string `json:"unchanged"`
	Steps     []Step   `json:"steps"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Compute plans the way from cur (nil on a node with nothing installed) to
// next. It is a pure function.
func Compute(cur, next *State) *Plan {
	if cur == nil {
		cur = &State{}
	}
	t := &transition{cur: cur, next: next, p: &Plan{}, curNames: cur.Names(), nextNames: next.Names()}
	t.classify()
	curAnn := t.withdrawRemoved()
	both := t.widenFirewall()
	// 3. TPROXY routing before transparent VIPs start.
	if next.TProxy() && !cur.TProxy() {
		t.add(Op{Kind: TProxy, On: true}, &Op{Kind: TProxy, On: false})
	}
	curAddrs, nextAddrs := addrs(cur), addrs(next)
	t.bringUp(curAddrs, nextAddrs)
	t.gateAndAnnounce(curAnn)
	t.takeDown(curAddrs, nextAddrs, both)
	return t.p
}

// transition is a plan being computed from cur to next, step by step.
type transition struct {
	cur, next           *State
	p                   *Plan
	curNames, nextNames []string
}

func (t *transition) add(do Op, undo *Op) { t.p.Steps = append(t.p.Steps, Step{Do: do, Undo: undo}) }

// classify sorts the VIPs into added, changed, unchanged and removed.
func (t *transition) classify() {
	for _, n := range t.nextNames {
		old := t.cur.VIP(n)
		switch {
		case old == nil:
			t.p.Added = append(t.p.Added, n)
		case vipEqual(old, t.next.VIP(n)):
			t.p.Unchanged = append(t.p.Unchanged, n)
		default:
			t.p.Changed = append(t.p.Changed, n)
		}
	}
	for _, n := range t.curNames {
		if t.next.VIP(n) == nil {
			t.p.Removed = append(t.p.Removed, n)
		}
	}
}

// withdrawRemoved is step 1: removed VIPs are withdrawn first; they keep
// serving (and the firewall keeps admitting them) until the very end, so
// their connections drain while the rest of the release comes up. It
// returns the announcement in force afterwards.
func (t *transition) withdrawRemoved() Op {
	curAnn := Announcement(t.cur, t.curNames)
	if len(t.p.Removed) > 0 {
		kept := Announcement(t.cur, without(t.curNames, t.p.Removed))
		undo := curAnn
		t.add(kept, &undo)
		curAnn = kept
	}
	return curAnn
}

// widenFirewall is step 2: the firewall admits both releases' listeners
// during the change. It returns that union.
func (t *transition) widenFirewall() model.Firewall {
	curFW, nextFW := t.cur.Firewall.Canonical(), t.next.Firewall.Canonical()
	both := unionFW(curFW, nextFW)
	if !reflect.DeepEqual(curFW, both) {
		old := t.cur.Firewall
		t.add(Op{Kind: Firewall, Firewall: &both}, &Op{Kind: Firewall, Firewall: &old})
	}
	return both
}

// bringUp is step 4: new addresses; the files of new VIPs and of VIPs
// whose unit changes, with one daemon-reload; then new and changed VIPs.
func (t *transition) bringUp(curAddrs, nextAddrs []netip.Addr) {
	cur, next := t.cur, t.next
	if fresh := subtract(nextAddrs, curAddrs); len(fresh) > 0 {
		t.add(Op{Kind: AddAddrs, Addrs: fresh}, &Op{Kind: RemoveAddrs, Addrs: fresh})
	}
	restart := func(n string) bool { return cur.VIP(n).Transparent != next.VIP(n).Transparent }
	write, undo := Op{Kind: VIPFiles}, Op{Kind: VIPFiles}
	for _, n := range t.p.Added {
		write.VIPs = append(write.VIPs, *next.VIP(n))
		undo.Names = append(undo.Names, n)
	}
	for _, n := range t.p.Changed {
		if restart(n) {
			write.VIPs = append(write.VIPs, *next.VIP(n))
			undo.VIPs = append(undo.VIPs, *cur.VIP(n))
		}
	}
	if len(write.VIPs) > 0 {
		t.add(write, &undo)
	}
	for _, n := range t.p.Added {
		v := next.VIP(n)
		t.add(Op{Kind: StartUnit, VIP: v}, &Op{Kind: StopUnit, VIP: v})
	}
	for _, n := range t.p.Changed {
		old, v := cur.VIP(n), next.VIP(n)
		if restart(n) {
			// The undo writes the old files back before its restart:
			// it runs before the VIPFiles step's own undo does.
			t.add(Op{Kind: RestartUnit, VIP: v}, &Op{Kind: RestartVIP, VIP: old})
			continue
		}
		t.add(Op{Kind: ReloadVIP, VIP: v}, &Op{Kind: ReloadVIP, VIP: old})
	}
}

// gateAndAnnounce is steps 5 and 6: nothing is announced before it is
// healthy; then BIRD and the announcements of the new release.
func (t *transition) gateAndAnnounce(curAnn Op) {
	if gate := append(slices.Clone(t.p.Added), t.p.Changed...); len(gate) > 0 {
		slices.Sort(gate)
		t.add(Op{Kind: HealthGate, Names: gate}, nil)
	}
	if !bytes.Equal(t.cur.BirdConf, t.next.BirdConf) {
		t.add(Op{Kind: Bird, Bird: t.next.BirdConf}, &Op{Kind: Bird, Bird: t.cur.BirdConf})
	}
	if nextAnn := Announcement(t.next, t.nextNames); !slices.Equal(nextAnn.Addrs, curAnn.Addrs) ||
		!bytes.Equal(t.cur.BirdConf, t.next.BirdConf) || !sameHealth(curAnn.VIPs, nextAnn.VIPs) {
		undo := curAnn
		t.add(nextAnn, &undo)
	}
}

// takeDown is step 7: removed VIPs drained, stopped, their files removed
// (one daemon-reload), then addresses, listeners and TPROXY routing that
// the new release no longer needs.
func (t *transition) takeDown(curAddrs, nextAddrs []netip.Addr, both model.Firewall) {
	if len(t.p.Removed) > 0 {
		t.add(Op{Kind: Wait, Names: t.p.Removed}, nil)
		restore := Op{Kind: VIPFiles}
		for _, n := range t.p.Removed {
			old := t.cur.VIP(n)
			t.add(Op{Kind: StopUnit, VIP: old}, &Op{Kind: StartUnit, VIP: old})
			restore.VIPs = append(restore.VIPs, *old)
		}
		t.add(Op{Kind: VIPFiles, Names: t.p.Removed}, &restore)
	}
	if gone := subtract(curAddrs, nextAddrs); len(gone) > 0 {
		t.add(Op{Kind: RemoveAddrs, Addrs: gone}, &Op{Kind: AddAddrs, Addrs: gone})
	}
	if !reflect.DeepEqual(both, t.next.Firewall.Canonical()) {
		nw := t.next.Firewall
		t.add(Op{Kind: Firewall, Firewall: &nw}, &Op{Kind: Firewall, Firewall: &both})
	}
	if t.cur.TProxy() && !t.next.TProxy() {
		t.add(Op{Kind: TProxy, On: false}, &Op{Kind: TProxy, On: true})
	}
}

func vipEqual(a, b *VIP) bool {
	if !reflect.DeepEqual(a.Probes, b.Probes) || !reflect.DeepEqual(a.Backends, b.Backends) {
		return false
	}
	if a.Transparent != b.Transparent || !slices.Equal(a.Addresses, b.Addresses) || len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i].Path != b.Files[i].Path || !bytes.Equal(a.Files[i].Data, b.Files[i].Data) {
			return false
		}
	}
	return true
}

// unionFW admits what either firewall admits.
func unionFW(a, b model.Firewall) model.Firewall {
	return model.Firewall{
		VIPs4: slices.Concat(a.VIPs4, b.VIPs4), VIPs6: slices.Concat(a.VIPs6, b.VIPs6),
		Accept4: slices.Concat(a.Accept4, b.Accept4), Accept6: slices.Concat(a.Accept6, b.Accept6),
		Transparent: a.Transparent || b.Transparent,
		Intercepts:  slices.Concat(a.Intercepts, b.Intercepts),
		Handoff:     unionHandoff(a.Handoff, b.Handoff),
	}.Canonical()
}

// unionHandoff admits the peers and clamps the backends of either (b's
// port and MSS win): forwarding between the nodes keeps working while an
// install changes the table.
func unionHandoff(a, b *model.Handoff) *model.Handoff {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return &model.Handoff{Port: b.Port, MSS: b.MSS,
		Peers4:    slices.Concat(a.Peers4, b.Peers4),
		Backends4: slices.Concat(a.Backends4, b.Backends4)}
}

func addrs(s *State) []netip.Addr { return addrsOf(s, s.Names()) }

// addrsOf returns the sorted addresses of the named VIPs of s.
// Announcement is the Announce op that makes the named VIPs of s the
// announceable set: their addresses, and the VIPs (without files) for the
// agent's probes.
func Announcement(s *State, names []string) Op {
	op := Op{Kind: Announce, Names: names, Addrs: addrsOf(s, names), VIPs: []VIP{}}
	for _, n := range names {
		v := *s.VIP(n)
		v.SendsEvents = v.sendsEvents()
		v.Files = nil
		op.VIPs = append(op.VIPs, v)
	}
	return op
}

// sameHealth reports whether two announcements give the agent the same
// VIPs to evaluate: a VIP whose probes, backends or events changed while
// its addresses did not must still reach the agent.
func sameHealth(a, b []VIP) bool {
	return slices.EqualFunc(a, b, func(x, y VIP) bool { return reflect.DeepEqual(x.Health(), y.Health()) })
}

func addrsOf(s *State, names []string) []netip.Addr {
	out := []netip.Addr{}
	for _, n := range names {
		out = append(out, s.VIP(n).Addresses...)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func subtract(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func without(names, drop []string) []string {
	out := []string{}
	for _, n := range names {
		if !slices.Contains(drop, n) {
			out = append(out, n)
		}
	}
	return out
}
