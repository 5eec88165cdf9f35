// Package netlink owns an LB node's VIP addresses and its TPROXY policy
// routing, over rtnetlink (jsimonetti/rtnetlink on mdlayher/netlink); it
// never runs the ip binary.
//
// VIP addresses are host prefixes (/32, /128) on the VIP interface (lo by
// default). lbctl marks the addresses it adds so that it never touches
// anyone else's:
//
//   - every VIP address carries IFA_F_NOPREFIXROUTE (a host address on the
//     VIP interface needs no prefix route);
//   - IPv4 VIPs carry the label "<interface>:lbctl" (":lb" when the
//     interface name is too long for that), which `ip addr` shows;
//   - IPv6 VIPs, which have no labels, carry IFA_F_NODAD as well: the
//     address is usable at once (no tentative phase) and the pair of flags,
//     which plain `ip addr add` never sets, marks it as lbctl's.
//
// An address that is on the interface without the mark is foreign: it is
// neither listed nor removed, and adding it reports ErrForeign.
//
// TPROXY routing is four objects, constants from the model:
//
//	ip -4 rule add fwmark 0x1 lookup 100 priority 100
//	ip -6 rule add fwmark 0x1 lookup 100 priority 100
//	ip -4 route add local 0.0.0.0/0 dev lo table 100
//	ip -6 route add local ::/0 dev lo table 100
//
// Every operation is idempotent and reads the kernel before it writes. Read
// returns the observed netstate.State; the pure side (State, the Ops that
// take one state to another, adds before removes, and Diff) lives in
// node/netlink/netstate, which links no netlink library. Fake is an
// in-memory Conn.
package netlink
