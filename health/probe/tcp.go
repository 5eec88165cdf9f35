package probe

import (
	"context"
	"fmt"
	"net/netip"
)

// TCP passes when a TCP connection to Addr is established.
type TCP struct {
	Addr netip.AddrPort
}

func (t *TCP) String() string { return "tcp " + t.Addr.String() }

// Check connects and closes at once.
func (t *TCP) Check(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	c, err := dial(ctx, t.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	return c.Close()
}
