// Package testbed builds a complete anycast site in network namespaces on one
// machine, for the demo (`lbctl-testbed up|down|status`, scripts/demo.sh) and
// the end-to-end tests: a route reflector and a router running BIRD, two LB
// nodes, a client behind the router and one namespace per backend address
// of a resolved model, each running a small HTTP/TCP server that says who it
// is and what it saw (Host, X-Forwarded-For, PROXY protocol source).
//
// The site outlives the process that made it: Up records namespaces and
// processes (PID and start time) in a JSON state file, and Down, in any later
// process, kills only the recorded processes and removes the namespaces and
// the state directory.
//
// # Topology (documentation ranges only)
//
//	namespace       interface  addresses                                  routes
//	lbtb-router     br-core    198.51.100.1/25  2001:db8:100::1/64          VIP routes from BIRD (ECMP)
//	                client     198.51.100.129/25 2001:db8:c::1/64
//	lbtb-rr         core       198.51.100.2/25  2001:db8:100::2/64          default via router
//	lbtb-lb1        core       198.51.100.11/25 2001:db8:100::11/64         default via router
//	                bk         203.0.113.1/24   2001:db8:203::1/64
//	lbtb-lb2        core       198.51.100.12/25 2001:db8:100::12/64         default via router
//	                bk         203.0.113.2/24   2001:db8:203::2/64
//	lbtb-client     eth0       198.51.100.130/25 2001:db8:c::2/64           default via router
//	lbtb-bk         br-bk      (bridge only: ports p-lb1, p-lb2, p-be1 ...)
//	lbtb-beN        eth0       the backend's address (/24 or /64)         default via lb1's bk address
//
// The core segment is a bridge in the router namespace (one L2 segment, so
// every BGP session is single-hop and next hops are on-link); 192.0.2.0/24
// is kept for VIPs, so the client sits on the upper half of 198.51.100.0/24
// and the core on the lower half. Backends are on one bridge with both LB
// nodes; their default route points at lb1 (setBackendGateway moves it), so
// replies of transparent services, whose destination is the client,
// return through an LB: transparent connections work through the gateway
// node only. Non-transparent connections come from the node's own bk address
// and work through both. LB nodes and the router forward packets.
//
// Node profiles of the model map to lb1, lb2, ... in host name order (as many
// LB nodes as profiles, at least two, at most 8; lbN has 198.51.100.1N,
// 2001:db8:100::1N, 203.0.113.N and 2001:db8:203::N); their
// route reflector must be 198.51.100.2 (or 2001:db8:100::2) and their other
// addresses are added on "core" (IPv6 ones outside 2001:db8:100::/64 with
// their /64, in which the router and the route reflector take ::1 and ::2).
// Backend addresses must be in documentation ranges outside the VIP, core
// and client prefixes; outside 203.0.113.0/24 and 2001:db8:203::/64 they
// get host routes on the LB nodes. Test certificates for every TLS
// certificate name are in <dir>/<node>/certs/<name>.pem (a systemd node
// binds that directory to /etc/lbctl/certs), the CA in <dir>/ca.pem.
//
// BIRD: the route reflector has one iBGP session per LB node (rr client,
// IPv4 transport carrying both IPv4 and IPv6 routes) and one to the router,
// which it sends every path (ADD-PATH), so the router's kernel table gets one
// ECMP route per VIP with a next hop per announcing node. The LB nodes' BIRD
// is not started: the product renders and runs it (startNodeBird is for tests
// that need it before then).
//
// LB nodes: with Options.LaunchNode = SystemdNodes{}.Launch (what `lbctl-testbed
// up`, the demo and test/e2e use) each LB node is systemd as PID 1
// in its own pid, mount, network, UTS and cgroup namespaces, sharing the
// host's files through overlays; Provision puts the product on it like the
// Debian package would (/usr/bin/lbctl, /etc/lbctl/lbctl.yaml, trusted
// keys, lbctl-agent.service), Install runs `lbctl install` inside it, and
// BIRD is Debian's bird.service, started by the first install. Traffic is
// a bounded request loop from the client that counts answers per LB node
// and backend; KillHAProxy kills a VIP's HAProxy on a node and times the
// withdrawal of that node's route at the router.
//
// Everything is driven with ip(8), nsenter(1) and bird, which is fine in a
// test harness and why this package lives under test/.
package testbed
