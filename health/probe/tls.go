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

// sessions keeps the TLS sessions of every probed listener (by SNI name):
// a probe resumes the session of the previous one, which spares both the
// agent and HAProxy the full handshake's certificate and signature (at 500
// VIPs, TLS handshakes were a third of the idle agent's probe CPU).
var sessions = tls.NewLRUClientSessionCache(4096)

// clientConfig is a probe's TLS client configuration: SNI name, no CA
// check (node/cert checks the certificates before an install), resumed
// sessions, and the classic X25519 and P-256 key exchanges, without the
// post-quantum hybrid (X25519MLKEM768) Go offers by default, which costs
// a liveness probe a large key share each time for nothing it protects.
func clientConfig(serverName string) *tls.Config {
	return &tls.Config{ServerName: serverName, InsecureSkipVerify: true, //nolint:gosec // liveness only
		ClientSessionCache: sessions, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
}

// Check does a handshake and closes.
func (t *TLS) Check(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	conn, err := dial(ctx, t.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	defer conn.Close()
	if err := tls.Client(conn, clientConfig(t.ServerName)).HandshakeContext(ctx); err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	return nil
}
