package model

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// Firewall is the desired nftables ruleset of an LB node as data: the
// renderer computes it from the VIPs, node/nft programs it into the kernel
// as the table "inet lbctl". The number of rules does not depend on the
// number of VIPs: addresses and VIP:port pairs live in sets.
//
// Semantics: TCP to an Accept pair is accepted; ICMP/ICMPv6 to a VIP address
// is accepted; anything else aimed at a VIP address is dropped. If
// Transparent is true, packets belonging to transparent sockets are marked
// with TProxyMark so that the policy rule delivers backend replies locally.
// Each Intercept diverts TCP to a prefix and port into the local listener.
type Firewall struct {
	// VIPs4 and VIPs6 are the VIP addresses (sorted).
	VIPs4 []netip.Addr `json:"vips4"`
	VIPs6 []netip.Addr `json:"vips6"`
	// Accept4 and Accept6 are the declared listeners (sorted by address,
	// then port).
	Accept4 []AddrPort `json:"accept4"`
	Accept6 []AddrPort `json:"accept6"`
	// Transparent is true when any VIP on the node is transparent.
	Transparent bool `json:"transparent"`
	// Intercepts sorted by Prefix then Port.
	Intercepts []Intercept `json:"intercepts,omitempty"`
	// Handoff is the flow handoff admission and MSS clamp, set when the
	// site has other LB nodes (docs/flow-handoff.md).
	Handoff *Handoff `json:"handoff,omitempty"`
}

// Handoff is the packet filter's part of flow handoff between the LB nodes
// of a site: encapsulated packets (VXLAN, UDP Port) are admitted only from
// Peers4 and the others are dropped and counted in the named counter
// HandoffRefusedCounter; SYNs of VIP connections and of connections to
// Backends4 get their MSS clamped to MSS so that a segment still fits the
// path MTU once encapsulated.
type Handoff struct {
	Port int `json:"port"`
	// Peers4 are the other LB nodes' IPv4 addresses (sorted).
	Peers4 []netip.Addr `json:"peers4"`
	// Backends4 are the servers of transparent services, address and
	// backend port (sorted by address, then port).
	Backends4 []AddrPort `json:"backends4,omitempty"`
	MSS       int        `json:"mss"`
}

// Flow handoff defaults: VXLAN's port, and the MSS that fits a 1500-byte
// path once the 50 bytes of VXLAN encapsulation (outer IPv4, UDP, VXLAN,
// inner Ethernet) are added: 1500 - 50 - 20 (IPv4) - 20 (TCP). IPv6 VIP
// connections are clamped to MSS - HandoffIPv6Extra (the IPv6 header is 40
// bytes, not 20; the outer packet is IPv4 either way): 1390.
const (
	HandoffPort           = 4789
	HandoffMSS            = 1410
	HandoffIPv6Extra      = 20
	HandoffRefusedCounter = "handoff_refused"
)

// AddrPort is one VIP address and TCP port.
type AddrPort struct {
	Addr netip.Addr `json:"addr"`
	Port int        `json:"port"`
}

// Intercept diverts TCP traffic to Prefix:Port (not addressed to the node) to
// the local transparent listener on ToAddr:ToPort with nftables "tproxy to".
// ToAddr is the zero Addr (JSON "") when the listener address is left to
// the kernel.
type Intercept struct {
	Prefix netip.Prefix `json:"prefix"`
	Port   int          `json:"port"`
	ToAddr netip.Addr   `json:"to_addr"`
	ToPort int          `json:"to_port"`
}

// TPROXY policy routing constants used on every node: packets marked with
// TProxyMark are looked up in TProxyTable, which routes everything locally.
const (
	TProxyMark     = 0x1
	TProxyTable    = 100
	TProxyRulePrio = 100
	// NFTTable is the only nftables table lbctl owns (family inet).
	NFTTable = "lbctl"
)

// Sort puts every list of fw in the model's order (addresses by text,
// pairs by address text then port, intercepts by prefix text then port)
// without duplicates; empty lists become nil. The lists are copied: fw
// shares none with the firewall it was copied from.
func (fw *Firewall) Sort() {
	fw.VIPs4 = sortCompact(fw.VIPs4, CompareAddrText)
	fw.VIPs6 = sortCompact(fw.VIPs6, CompareAddrText)
	byPair := func(a, b AddrPort) int {
		return cmp.Or(CompareAddrText(a.Addr, b.Addr), cmp.Compare(a.Port, b.Port))
	}
	fw.Accept4 = sortCompact(fw.Accept4, byPair)
	fw.Accept6 = sortCompact(fw.Accept6, byPair)
	fw.Intercepts = sortCompact(fw.Intercepts, func(a, b Intercept) int {
		return cmp.Or(strings.Compare(prefixText(a.Prefix), prefixText(b.Prefix)), cmp.Compare(a.Port, b.Port),
			CompareAddrText(a.ToAddr, b.ToAddr), cmp.Compare(a.ToPort, b.ToPort))
	})
	if fw.Handoff != nil {
		h := *fw.Handoff
		h.Peers4 = sortCompact(h.Peers4, CompareAddrText)
		h.Backends4 = sortCompact(h.Backends4, byPair)
		fw.Handoff = &h
	}
}

// Canonical is fw in the model's order: the one canonical form of a
// firewall, for rendering and for comparing two of them.
func (fw Firewall) Canonical() Firewall {
	fw.Sort()
	return fw
}

func sortCompact[T comparable](s []T, f func(a, b T) int) []T {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.SortFunc(s, f)
	return slices.Compact(s)
}

// CompareAddrText orders addresses by their text, the model's order
// (so "10.0.0.10" sorts before "10.0.0.9"); the zero Addr is "" and sorts
// first.
func CompareAddrText(a, b netip.Addr) int {
	return strings.Compare(AddrText(a), AddrText(b))
}

// AddrText is a's canonical text, "" for the zero Addr (as in the JSON).
func AddrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
