// Package probe holds the active probes of a VIP listener: a TCP connect, an
// HTTP(S) request with the service's Host header and SNI, and a TLS
// handshake. One small Checker interface, one file per protocol. Probes dial
// from the node itself to the VIP address, so they see what a client would
// see at this node (the firewall, HAProxy's listener and its backends).
package probe

import (
	"context"
	"net"
	"time"
)

// Checker is one probe.
type Checker interface {
	// Check returns nil when the probe passes.
	Check(ctx context.Context) error
	// String names the probe in logs and status.
	String() string
}

// dialer opens every probe's connection. A probe's connection lives for
// milliseconds: TCP keep-alive would cost four socket options per probe
// for nothing.
var dialer = net.Dialer{KeepAlive: -1}

// DefaultTimeout bounds one probe when the context has no deadline.
const DefaultTimeout = 2 * time.Second

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}
