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
	c, err := dialer.DialContext(ctx, "tcp", t.Addr.String())
	if err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	return c.Close()
}
