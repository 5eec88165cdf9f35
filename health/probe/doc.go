// Package probe holds the active probes of a VIP listener: a TCP connect, an
// HTTP(S) request with the service's Host header and SNI, and a TLS
// handshake. One small Checker interface, one file per protocol. Probes dial
// from the node itself to the VIP address, so they see what a client would
// see at this node (the firewall, HAProxy's listener and its backends).
package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Checker is one probe.
type Checker interface {
	// Check returns nil when the probe passes.
	Check(ctx context.Context) error
	// String names the probe in logs and status.
	String() string
}

// dialer opens a probe's connection when its source address is left to
// the kernel. A probe's connection lives for milliseconds: TCP keep-alive
// would cost four socket options per probe for nothing.
var dialer = net.Dialer{KeepAlive: -1}

// dial connects to addr from addr's own IP address, which is what the
// kernel picks anyway when the address is this host's (a VIP probed on its
// own node: the local route's source for IPv4, "prefer the same address"
// for IPv6). Given it, the kernel skips source address selection, which
// for IPv6 looks at every address of the host: at 500 VIPs with 300 IPv6
// VIP addresses, that was a fifth of every IPv6 probe's connect. When addr
// is not this host's, the kernel picks the source.
func dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{KeepAlive: -1, Control: bindAddressNoPort,
		LocalAddr: &net.TCPAddr{IP: addr.Addr().AsSlice(), Zone: addr.Addr().Zone()}}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return dialer.DialContext(ctx, "tcp", addr.String())
	}
	return c, err
}

// DefaultTimeout bounds one probe when the context has no deadline.
const DefaultTimeout = 2 * time.Second

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}
