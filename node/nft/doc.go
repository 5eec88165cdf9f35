// Package nft programs an LB node's packet filter: exactly one nftables
// table, "inet lbctl" (model.NFTTable), built from a model.Firewall. It
// talks to the kernel over netlink (google/nftables) and never runs the nft
// binary; it never reads, changes or deletes any other table.
//
// The table has a fixed shape whatever the number of VIPs:
//
//	set vip4 { type ipv4_addr }                      VIP addresses
//	set vip6 { type ipv6_addr }
//	set svc4 { type ipv4_addr . inet_service }       declared VIP:port pairs
//	set svc6 { type ipv6_addr . inet_service }
//	chain input { type filter hook input priority filter; policy accept;
//		ip daddr . tcp dport @svc4 accept
//		ip6 daddr . tcp dport @svc6 accept
//		meta l4proto icmp ip daddr @vip4 accept
//		meta l4proto ipv6-icmp ip6 daddr @vip6 accept
//		ip daddr @vip4 drop
//		ip6 daddr @vip6 drop
//	}
//	chain prerouting { type filter hook prerouting priority mangle; policy accept;
//		meta l4proto tcp socket transparent 1 meta mark set 0x00000001 accept   (Transparent)
//		ip daddr P tcp dport N tproxy ip to A:M meta mark set 0x00000001 accept (one per Intercept)
//	}
//
// With flow handoff (model.Handoff, a site with other LB nodes) the table
// also has
//
//	counter handoff_refused
//	set hpeer4 { type ipv4_addr }                    the other nodes' addresses
//	set hback4 { type ipv4_addr . inet_service }     transparent VIPs' servers
//	input, first:  udp dport 4789 ip saddr != @hpeer4 counter name "handoff_refused" drop
//	chain output { type filter hook output priority mangle; policy accept;
//		tcp flags syn ip saddr . tcp sport @svc4 tcp option maxseg size > 1410 tcp option maxseg size set 1410
//		tcp flags syn ip daddr . tcp dport @hback4 tcp option maxseg size > 1410 tcp option maxseg size set 1410
//		tcp flags syn ip6 saddr . tcp sport @svc6 tcp option maxseg size > 1390 tcp option maxseg size set 1390
//	}
//
// so the number of rules depends only on Transparent, the intercepts and
// whether the node has peers,
// never on the number of VIPs or listeners: those are set elements.
//
// Apply replaces the whole table in one netlink batch (add table, delete
// table, then the new table with its sets, elements, chains and rules) sent
// with a single Flush: the kernel commits all of it or none of it, so
// packets see the old table or the new one, never a mix. Read lists the
// table back into a model.Firewall and checks that its chains and rules are
// exactly what Apply would have programmed (ErrDrift otherwise), so
// nftspec.Diff(want, read) is empty exactly when the kernel enforces want.
//
// The pure side (validating and parsing a model.Firewall into an
// nftspec.Spec, its canonical form, Diff) lives in node/nft/nftspec, which
// links no netlink library; this package is the kernel client.
//
// Build and the rule builders (InputRules, TransparentRule, InterceptRule)
// are pure functions returning nftables objects; Render prints the same
// table in nft syntax. Fake is an in-memory Conn for tests of callers.
package nft
