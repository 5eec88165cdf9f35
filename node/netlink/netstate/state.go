// Package netstate is the pure side of node/netlink: the VIP addresses and
// TPROXY routing a node has or should have (State), the operations that take
// one State to another (Ops: adds before removes) and their difference
// (Diff). It links no netlink library, so the drift check (node/drift) uses
// it; node/netlink is the kernel client that reads a State and runs the Ops.
package netstate

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// State is what node/netlink manages on a node.
type State struct {
	// VIPs are host prefixes (/32, /128).
	VIPs []netip.Prefix
	// TProxy is true when all four TPROXY routing objects exist.
	TProxy bool
	// TProxyPartial, in an observed state, means some but not all of them
	// exist. Ignored in a desired state.
	TProxyPartial bool
}

// OpKind is what an Op does.
type OpKind string

// Kinds of Op.
const (
	AddVIP    OpKind = "add-vip"
	RemoveVIP OpKind = "remove-vip"
	TProxyOn  OpKind = "tproxy-on"
	TProxyOff OpKind = "tproxy-off"
)

// Op is one operation on the kernel's addresses or TPROXY routing.
type Op struct {
	Kind OpKind
	VIP  netip.Prefix // for AddVIP and RemoveVIP
}

func (o Op) String() string {
	if o.Kind == AddVIP || o.Kind == RemoveVIP {
		return string(o.Kind) + " " + o.VIP.String()
	}
	return string(o.Kind)
}

// HostPrefix is the /32 or /128 of a.
func HostPrefix(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
}

// Ops returns the operations that take observed to desired: TPROXY
// routing on, VIPs added, VIPs removed, TPROXY routing off, in that order
// (anything a new VIP needs exists before it appears; nothing is removed
// before what replaces it is in place). Equal states give no operations.
// Pure.
func Ops(desired, observed State) []Op {
	want, have := prefixSet(desired.VIPs), prefixSet(observed.VIPs)
	var ops []Op
	if desired.TProxy && !observed.TProxy {
		ops = append(ops, Op{Kind: TProxyOn})
	}
	for _, p := range SortedPrefixes(want) {
		if !have[p] {
			ops = append(ops, Op{Kind: AddVIP, VIP: p})
		}
	}
	for _, p := range SortedPrefixes(have) {
		if !want[p] {
			ops = append(ops, Op{Kind: RemoveVIP, VIP: p})
		}
	}
	if !desired.TProxy && (observed.TProxy || observed.TProxyPartial) {
		ops = append(ops, Op{Kind: TProxyOff})
	}
	return ops
}

// Diff lists the differences between desired and observed, one line each,
// sorted; empty when they agree.
func Diff(desired, observed State) []string {
	var out []string
	want, have := prefixSet(desired.VIPs), prefixSet(observed.VIPs)
	for _, p := range SortedPrefixes(want) {
		if !have[p] {
			out = append(out, "vip: missing "+p.String())
		}
	}
	for _, p := range SortedPrefixes(have) {
		if !want[p] {
			out = append(out, "vip: unexpected "+p.String())
		}
	}
	tp := func(s State) string {
		switch {
		case s.TProxy:
			return "on"
		case s.TProxyPartial:
			return "partial"
		}
		return "off"
	}
	if w, g := tp(State{TProxy: desired.TProxy}), tp(observed); w != g {
		out = append(out, fmt.Sprintf("tproxy: want %s, got %s", w, g))
	}
	slices.Sort(out)
	return out
}

func prefixSet(ps []netip.Prefix) map[netip.Prefix]bool {
	m := make(map[netip.Prefix]bool, len(ps))
	for _, p := range ps {
		m[p.Masked()] = true
	}
	return m
}

// SortedPrefixes returns the prefixes of a set, sorted by ComparePrefix.
func SortedPrefixes(m map[netip.Prefix]bool) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, ComparePrefix)
	return out
}

// ComparePrefix orders prefixes by address, then length.
func ComparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}
