// Package probe holds the active probes of a VIP listener: a TCP connect, an
// HTTP(S) request with the service's Host header and SNI, and a TLS
// handshake. One small Checker interface, one file per protocol. Probes dial
// from the node itself to the VIP address, so they see what a client would
// see at this node (the firewall, HAProxy's listener and its backends).
package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/lbctl/lbctl/node/plan"
)

// Checker is one probe.
type Checker interface {
	// Check returns nil when the probe passes.
	Check(ctx context.Context) error
	// String names the probe in logs and status.
	String() string
}

// DefaultTimeout bounds one probe when the context has no deadline.
const DefaultTimeout = 2 * time.Second

// For returns the checker for a probe of a release.
func For(p plan.Probe) (Checker, error) {
	switch p.Kind {
	case plan.ProbeTCP:
		return &TCP{Addr: p.Addr}, nil
	case plan.ProbeTLS:
		return &TLS{Addr: p.Addr, ServerName: p.Host}, nil
	case plan.ProbeHTTP:
		return &HTTP{Addr: p.Addr, Host: p.Host, Path: p.Path, TLS: p.TLS, RedirectOnly: p.RedirectOnly}, nil
	}
	return nil, fmt.Errorf("unknown probe kind %q", p.Kind)
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}
