package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
)

// TLS passes when a TLS handshake with ServerName as SNI completes. The
// certificate is not verified against a CA here (the node has no trust
// store of the clients'); node/cert checks it before an install.
type TLS struct {
	Addr       netip.AddrPort
	ServerName string
}

func (t *TLS) String() string { return fmt.Sprintf("tls %s sni %s", t.Addr, t.ServerName) }

// Check does a handshake and closes.
func (t *TLS) Check(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: true}} //nolint:gosec // liveness only
	c, err := d.DialContext(ctx, "tcp", t.Addr.String())
	if err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	return c.Close()
}
