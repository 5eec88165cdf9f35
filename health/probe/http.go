package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
)

// HTTP passes when a request to Addr with the service's Host header (and SNI
// when TLS) gets an answer that is not a server error: a 5xx means HAProxy
// has no backend to send it to. A redirect-only listener must answer with a
// redirect.
type HTTP struct {
	Addr         netip.AddrPort
	Host         string
	Path         string
	TLS          bool
	RedirectOnly bool
}

func (h *HTTP) String() string {
	scheme := "http"
	if h.TLS {
		scheme = "https"
	}
	return fmt.Sprintf("%s %s host %s", scheme, h.Addr, h.Host)
}

// Check sends one GET without following redirects, over one connection
// it opens and closes itself: an http.Transport per check costs two
// goroutines and more than the request does.
func (h *HTTP) Check(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	path := h.Path
	if path == "" {
		path = "/"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.Addr.String())
	if err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Closing the connection when ctx ends unblocks a read or handshake
	// that the deadline alone would not (a cancelled parent).
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if h.TLS {
		tc := tls.Client(conn, &tls.Config{ServerName: h.Host, InsecureSkipVerify: true}) //nolint:gosec // liveness only
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("%s: %w", h, err)
		}
		conn = tc
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lbctl-health\r\nConnection: close\r\n\r\n", path, h.Host); err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("%s: %w", h, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case h.RedirectOnly && (resp.StatusCode < 300 || resp.StatusCode > 399):
		return fmt.Errorf("%s: status %d, want a redirect", h, resp.StatusCode)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%s: status %d", h, resp.StatusCode)
	}
	return nil
}
