package nft

import (
	"fmt"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
)

// Render returns the table fw describes in nft syntax, the same table Apply
// programs: `nft -f` accepts it, and the kernel then lists the same ruleset
// (the integration tests check both). Used for display and by Fake.String.
func Render(fw model.Firewall) (string, error) {
	s, err := compile(fw)
	if err != nil {
		return "", err
	}
	return render(s), nil
}

func render(s spec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", model.NFTTable)
	set := func(name, typ string, elems []string) {
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n", name, typ)
		if len(elems) > 0 {
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
		}
		b.WriteString("\t}\n\n")
	}
	var v4, v6, p4, p6 []string
	for _, a := range s.vip4 {
		v4 = append(v4, a.String())
	}
	for _, a := range s.vip6 {
		v6 = append(v6, a.String())
	}
	for _, p := range s.svc4 {
		p4 = append(p4, fmt.Sprintf("%s . %d", p.Addr(), p.Port()))
	}
	for _, p := range s.svc6 {
		p6 = append(p6, fmt.Sprintf("%s . %d", p.Addr(), p.Port()))
	}
	set(SetVIP4, "ipv4_addr", v4)
	set(SetVIP6, "ipv6_addr", v6)
	set(SetSvc4, "ipv4_addr . inet_service", p4)
	set(SetSvc6, "ipv6_addr . inet_service", p6)
	b.WriteString(`	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
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
	if s.transparent {
		fmt.Fprintf(&b, "\t\tmeta l4proto tcp socket transparent 1 %s\n", mark)
	}
	for _, ic := range s.intercepts {
		fam, ip := "ip", "ip"
		if ic.is6() {
			fam, ip = "ip6", "ip6"
		}
		to := ""
		if ic.to.IsValid() {
			to = ic.to.String()
		}
		match := fmt.Sprintf("%s daddr %s ", ip, ic.prefix)
		if ic.prefix.Bits() == 0 {
			match = "meta nfproto " + map[string]string{"ip": "ipv4", "ip6": "ipv6"}[fam] + " "
		}
		fmt.Fprintf(&b, "\t\t%stcp dport %d tproxy %s to %s %s\n", match, ic.port, fam, target(to, int(ic.toPort)), mark)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}
