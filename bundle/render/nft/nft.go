// Package nft computes an LB node's desired packet filter as data
// (model.Firewall, which node/nft programs into the kernel as the table
// "inet lbctl") and renders the equivalent nft text for review.
//
// The ruleset has a fixed number of rules whatever the number of VIPs:
// addresses and VIP:port pairs are set elements. TCP to a declared VIP:port
// is accepted, ICMP to a VIP is accepted, anything else aimed at a VIP is
// dropped; packets of transparent sockets are marked for the TPROXY policy
// route, and intercept prefixes of transparent services are diverted to the
// local listener with "tproxy to".
//
// The package is pure: it never talks to the kernel or runs nft.
package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
)

// Firewall returns the desired firewall of node: every VIP of the site is
// served by every node, so node only names the profile in errors. Lists are
// sorted as the model documents (by address text, then port) and free of
// duplicates.
func Firewall(site *model.Site, node *model.Node) (model.Firewall, error) {
	var fw model.Firewall
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, v := range site.VIPs {
		var v4, v6 []netip.Addr
		for _, ip := range v.Addresses {
			if !model.PlainAddr(ip) {
				fail("vip %s: address %q: not a plain IPv4 or IPv6 address", v.Name, ip)
				continue
			}
			if ip.Is4() {
				v4 = append(v4, ip)
				fw.VIPs4 = append(fw.VIPs4, ip)
			} else {
				v6 = append(v6, ip)
				fw.VIPs6 = append(fw.VIPs6, ip)
			}
		}
		fw.Transparent = fw.Transparent || v.Transparent
		for _, p := range v.Ports {
			if p.Port < 1 || p.Port > 65535 {
				fail("vip %s: port %d out of range", v.Name, p.Port)
				continue
			}
			fam4, fam6 := families(site, v.Name, p)
			if fam4 {
				for _, ip := range v4 {
					fw.Accept4 = append(fw.Accept4, model.AddrPort{Addr: ip, Port: p.Port})
				}
			}
			if fam6 {
				for _, ip := range v6 {
					fw.Accept6 = append(fw.Accept6, model.AddrPort{Addr: ip, Port: p.Port})
				}
			}
		}
		for _, name := range v.Services {
			s := site.Service(name)
			if s == nil {
				fail("vip %s: service %s: not in the site", v.Name, name)
				continue
			}
			if !s.Transparent {
				if len(s.InterceptPrefixes) > 0 {
					fail("service %s: intercept prefixes need a transparent service", s.Name)
				}
				continue
			}
			fw.Transparent = true
			for _, pfx := range s.InterceptPrefixes {
				if !pfx.IsValid() || pfx.Masked() != pfx {
					fail("service %s: intercept prefix %q: want a prefix without host bits", s.Name, pfx)
					continue
				}
				to := v4
				if pfx.Addr().Is6() {
					to = v6
				}
				if len(to) == 0 {
					fail("service %s: intercept prefix %s: the VIP has no address of its family to divert to", s.Name, pfx)
					continue
				}
				for _, l := range s.Listeners {
					if l.Action != model.ActionServe || (pfx.Addr().Is4() && !l.IPv4) || (pfx.Addr().Is6() && !l.IPv6) {
						continue
					}
					fw.Intercepts = append(fw.Intercepts, model.Intercept{Prefix: pfx, Port: l.Port, ToAddr: to[0], ToPort: l.Port})
				}
			}
		}
	}
	fw.Handoff = handoff(site, node)
	if len(errs) > 0 {
		return model.Firewall{}, fmt.Errorf("nft: node %s: %w", node.Hostname, errors.Join(errs...))
	}
	fw.Sort()
	return fw, nil
}

// handoff is the flow handoff part of node's firewall: the other nodes'
// IPv4 addresses and the transparent services' servers; nil when node has
// no peer (a one-node site). The resolver has validated the addresses.
func handoff(site *model.Site, node *model.Node) *model.Handoff {
	h := &model.Handoff{Port: model.HandoffPort, MSS: model.HandoffMSS}
	for _, n := range site.Nodes {
		if n.Hostname == node.Hostname {
			continue
		}
		for _, ip := range n.Addresses {
			if ip.Is4() {
				h.Peers4 = append(h.Peers4, ip)
			}
		}
	}
	if len(h.Peers4) == 0 {
		return nil
	}
	for _, s := range site.Services {
		if !s.Transparent {
			continue
		}
		for _, srv := range s.Backend.Servers {
			ip := srv.Address
			if !ip.Is4() {
				continue
			}
			for _, l := range s.Listeners {
				if l.BackendPort > 0 {
					h.Backends4 = append(h.Backends4, model.AddrPort{Addr: ip, Port: l.BackendPort})
				}
			}
		}
	}
	return h
}

// families says on which address families a VIP port listens: the union of
// its services' listeners.
func families(site *model.Site, vip string, p model.Port) (v4, v6 bool) {
	for _, name := range p.Services {
		s := site.Service(name)
		if s == nil || s.VIP != vip {
			continue
		}
		for _, l := range s.Listeners {
			if l.Port == p.Port {
				v4 = v4 || l.IPv4
				v6 = v6 || l.IPv6
			}
		}
	}
	return v4, v6
}

// interceptRule is the prerouting rule of ic without its verdict: match
// the prefix and port, divert with tproxy to the local listener.
func interceptRule(ic model.Intercept) string {
	fam, nfproto := "ip", "ipv4"
	if ic.Prefix.Addr().Is6() {
		fam, nfproto = "ip6", "ipv6"
	}
	match := fmt.Sprintf("%s daddr %s ", fam, ic.Prefix)
	if ic.Prefix.Bits() == 0 {
		match = "meta nfproto " + nfproto + " "
	}
	to := ":" + strconv.Itoa(ic.ToPort)
	switch {
	case ic.ToAddr.IsValid() && fam == "ip6":
		to = "[" + ic.ToAddr.String() + "]" + to
	case ic.ToAddr.IsValid():
		to = ic.ToAddr.String() + to
	}
	return fmt.Sprintf("%stcp dport %d tproxy %s to %s", match, ic.Port, fam, to)
}

// NFTText returns fw as nft text: "nft -f" loads it as the table inet lbctl,
// the same table node/nft programs over netlink (and lists back in this
// form). Lists are sorted first, so equal firewalls give equal text.
func NFTText(fw model.Firewall) string {
	fw.Sort()
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", model.NFTTable)
	set := func(name, typ string, elems []string) {
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n", name, typ)
		if len(elems) > 0 {
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
		}
		b.WriteString("\t}\n\n")
	}
	addrs := func(as []netip.Addr) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.String())
		}
		return out
	}
	pairs := func(ps []model.AddrPort) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Addr.String()+" . "+strconv.Itoa(p.Port))
		}
		return out
	}
	if fw.Handoff != nil {
		fmt.Fprintf(&b, "\tcounter %s {\n\t\tpackets 0 bytes 0\n\t}\n\n", model.HandoffRefusedCounter)
	}
	set("vip4", "ipv4_addr", addrs(fw.VIPs4))
	set("vip6", "ipv6_addr", addrs(fw.VIPs6))
	set("svc4", "ipv4_addr . inet_service", pairs(fw.Accept4))
	set("svc6", "ipv6_addr . inet_service", pairs(fw.Accept6))
	h := fw.Handoff
	if h != nil {
		set("hpeer4", "ipv4_addr", addrs(h.Peers4))
		set("hback4", "ipv4_addr . inet_service", pairs(h.Backends4))
	}
	b.WriteString(`	chain input {
		type filter hook input priority filter; policy accept;
`)
	if h != nil {
		fmt.Fprintf(&b, "\t\tudp dport %d ip saddr != @hpeer4 counter name \"%s\" drop\n", h.Port, model.HandoffRefusedCounter)
	}
	b.WriteString(`		ct state established,related accept
		ip daddr . tcp dport @svc4 accept
		ip6 daddr . tcp dport @svc6 accept
		meta l4proto icmp ip daddr @vip4 accept
		meta l4proto ipv6-icmp ip6 daddr @vip6 accept
		ip daddr @vip4 drop
		ip6 daddr @vip6 drop
	}

	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
`)
	mark := fmt.Sprintf("meta mark set 0x%08x accept", model.TProxyMark)
	if fw.Transparent {
		fmt.Fprintf(&b, "\t\tmeta l4proto tcp socket transparent 1 %s\n", mark)
	}
	for _, ic := range fw.Intercepts {
		fmt.Fprintf(&b, "\t\t%s %s\n", interceptRule(ic), mark)
	}
	b.WriteString("\t}\n")
	if h != nil {
		clamp := fmt.Sprintf("tcp option maxseg size > %d tcp option maxseg size set %d", h.MSS, h.MSS)
		fmt.Fprintf(&b, "\n\tchain output {\n\t\ttype filter hook output priority mangle; policy accept;\n")
		fmt.Fprintf(&b, "\t\ttcp flags syn ip saddr . tcp sport @svc4 %s\n", clamp)
		fmt.Fprintf(&b, "\t\ttcp flags syn ip daddr . tcp dport @hback4 %s\n", clamp)
		mss6 := h.MSS - model.HandoffIPv6Extra
		fmt.Fprintf(&b, "\t\ttcp flags syn ip6 saddr . tcp sport @svc6 tcp option maxseg size > %d tcp option maxseg size set %d\n", mss6, mss6)
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}
