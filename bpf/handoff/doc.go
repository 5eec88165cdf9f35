// Package handoff owns lbctl's flow handoff datapath (issue 17): the eBPF
// programs in src/handoff.c, compiled by bpf2go into the committed
// handoff_bpfel.o and handoff_bpfel.go (`make generate` rebuilds them), their
// loader, and the VXLAN device that carries forwarded packets between LB
// nodes.
//
// When the router moves a flow to another LB node (a drain, a withdrawn
// route, an ECMP rehash) or a backend's reply for a transparent VIP reaches
// the gateway node instead of the node that opened the connection, the
// receiving node has no socket for it. handoff_uplink, at tc ingress on the
// node's uplinks, sends such a packet (TCP, not a SYN, to a local VIP port or
// from a transparent VIP's backend, no local established or request socket)
// to every peer node through the collect_md VXLAN device lbh0, one copy per
// peer; handoff_tunnel, at tc ingress on lbh0 of each peer, delivers the copy
// where a socket owns it and drops it everywhere else. A forwarded packet is
// never forwarded again, and replies leave the owning node straight to the
// client. IPv6 packets are handed off the same way, inside VXLAN between the
// nodes' IPv4 addresses. docs/flow-handoff.md explains the design.
//
// LoadPinned pins the maps and the tc links in a bpf file system, so the
// programs keep forwarding while the agent restarts; the next LoadPinned
// adopts them and Apply moves the links to its own program in place.
//
// Load needs CAP_BPF, CAP_NET_ADMIN and a kernel with tcx (>= 6.6) and the
// VXLAN driver; otherwise it returns an error wrapping ErrNotSupported and
// the node works as without handoff.
//
// The package never logs and decides nothing about health.
package handoff
