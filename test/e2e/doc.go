// Package e2e holds the end-to-end tests of lbctl: the examples/campus tree
// built into a signed bundle and installed with the real lbctl binary on
// both LB nodes of the sandbox (test/testbed; each node is systemd as PID 1
// in its own namespaces, with Debian's BIRD and HAProxy), then real requests
// from the client namespace through the router's ECMP routes. They assert
// what the README and `make demo` claim: redirects, TLS with the right
// certificate, PROXY protocol, IPv6, spreading over both nodes, a failover
// without a failed request, a broken bundle refused with no change, and a
// bundle whose new VIP never gets healthy rolled back while the other VIPs
// keep serving.
//
// They need root (namespaces, systemd, nftables, eBPF when available) and
// skip otherwise, and with -short. Nothing outside the namespaces they make
// is touched.
package e2e
