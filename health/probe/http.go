package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
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
	conn, err := dial(ctx, h.Addr)
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
		tc := tls.Client(conn, clientConfig(h.Host))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("%s: %w", h, err)
		}
		conn = tc
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + h.Host + "\r\nUser-Agent: lbctl-health\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	code, err := readStatus(bufio.NewReaderSize(conn, 1024))
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("%s: %w", h, err)
	}
	switch {
	case h.RedirectOnly && (code < 300 || code > 399):
		return fmt.Errorf("%s: status %d, want a redirect", h, code)
	case code >= 500:
		return fmt.Errorf("%s: status %d", h, code)
	}
	return nil
}

// readStatus reads an HTTP/1.x response's status code, skips its header
// and reads its body (at most 64 KiB: up to Content-Length, else until the
// server closes, which Connection: close asks for). A probe needs the code
// only: this costs no header map, no per-header strings.
func readStatus(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the status line: %w", err)
	}
	code, ok := statusCode(line)
	if !ok {
		return 0, fmt.Errorf("malformed HTTP status line %q", bytes.TrimSpace(line))
	}
	body := int64(64 << 10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("reading the response header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "content-length") {
			if n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64); err == nil && n >= 0 {
				body = min(body, n)
			}
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(br, body))
	return code, nil
}

// statusCode parses "HTTP/1.x NNN ...".
func statusCode(line []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1."))
	if !ok || len(rest) < 5 || rest[1] != ' ' {
		return 0, false
	}
	c := rest[2:5]
	if c[0] < '1' || c[0] > '5' || c[1] < '0' || c[1] > '9' || c[2] < '0' || c[2] > '9' ||
		(len(rest) > 5 && rest[5] != ' ' && rest[5] != '\r' && rest[5] != '\n') {
		return 0, false
	}
	return int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0'), true
}
