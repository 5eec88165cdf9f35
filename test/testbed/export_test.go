package testbed

import (
	"context"
	"net/netip"
)

// What the external tests (testbed_test.go) use of the unexported API.

var ErrAlreadyUp = errAlreadyUp

func AppendProxyV2(b []byte, src, dst netip.AddrPort) []byte { return appendProxyV2(b, src, dst) }

func (s *Site) StartNodeBird(ctx context.Context, node, conf string) (string, error) {
	return s.startNodeBird(ctx, node, conf)
}

func (s *Site) SetBackendGateway(ctx context.Context, node string) error {
	return s.setBackendGateway(ctx, node)
}

func (s *Site) StopProc(ctx context.Context, role string) error { return s.stopProc(ctx, role) }

func (s *Site) Exec(ctx context.Context, netns string, argv ...string) ([]byte, error) {
	return s.execIn(ctx, netns, argv...)
}
