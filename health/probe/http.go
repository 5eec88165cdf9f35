package probe

import (
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

// Check sends one GET without following redirects.
func (h *HTTP) Check(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	path := h.Path
	if path == "" {
		path = "/"
	}
	scheme := "http"
	if h.TLS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+h.Host+path, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	req.Header.Set("User-Agent", "lbctl-health")
	addr := h.Addr.String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{ServerName: h.Host, InsecureSkipVerify: true}, //nolint:gosec // liveness only
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
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
