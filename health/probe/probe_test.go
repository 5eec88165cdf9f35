package probe

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbctl/lbctl/internal/testcert"
)

func addrOf(t *testing.T, u string) netip.AddrPort {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	return netip.MustParseAddrPort(host)
}

func TestHTTP(t *testing.T) {
	var gotHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		switch r.URL.Path {
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "https://"+r.Host+"/", http.StatusMovedPermanently)
		default:
			w.WriteHeader(http.StatusNotFound) // the backend answers: healthy
		}
	}))
	defer srv.Close()
	a := addrOf(t, srv.URL)
	ctx := context.Background()
	if err := (&HTTP{Addr: a, Host: "www.campus.example"}).Check(ctx); err != nil || gotHost != "www.campus.example" {
		t.Fatalf("plain: %v, host %q", err, gotHost)
	}
	if err := (&HTTP{Addr: a, Host: "x", Path: "/down"}).Check(ctx); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("503: %v", err)
	}
	if err := (&HTTP{Addr: a, Host: "x", Path: "/moved", RedirectOnly: true}).Check(ctx); err != nil {
		t.Fatalf("redirect: %v", err)
	}
	if err := (&HTTP{Addr: a, Host: "x", RedirectOnly: true}).Check(ctx); err == nil {
		t.Fatal("redirect-only listener answering 404 passed")
	}
}

func TestHTTPSAndTLSUseSNI(t *testing.T) {
	ca, _ := testcert.NewCA("ca")
	pemData, _ := ca.IssueValid("www.campus.example")
	cert, err := tls.X509KeyPair(pemData, pemData)
	if err != nil {
		t.Fatal(err)
	}
	var sni string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni = h.ServerName
		return nil, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	a := addrOf(t, srv.URL)
	for _, c := range []Checker{
		&HTTP{Addr: a, Host: "www.campus.example", TLS: true},
		&TLS{Addr: a, ServerName: "www.campus.example"},
	} {
		sni = ""
		if err := c.Check(context.Background()); err != nil || sni != "www.campus.example" {
			t.Fatalf("%s: %v (sni %q)", c, err, sni)
		}
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	if err := (&TCP{Addr: a}).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := (&TCP{Addr: a}).Check(context.Background()); err == nil {
		t.Fatal("closed listener passed")
	}
}

// rawServer answers every connection with answer and keeps it open until
// the client closes it.
func rawServer(t *testing.T, answer string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte(answer))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// TestHTTPReadsStatusOnly: the probe reads the status line, skips the
// header, reads the body up to Content-Length without waiting for the
// server to close, and rejects an answer that is not HTTP.
func TestHTTPReadsStatusOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // against hangs only
	defer cancel()
	a := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 2\r\n\r\nok")
	if err := (&HTTP{Addr: a, Host: "x"}).Check(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("keep-alive answer with Content-Length: %v (ctx %v)", err, ctx.Err())
	}
	a = rawServer(t, "HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
	if err := (&HTTP{Addr: a, Host: "x"}).Check(ctx); err == nil || !strings.Contains(err.Error(), "status 502") {
		t.Fatalf("502: %v", err)
	}
	a = rawServer(t, "SSH-2.0-OpenSSH_9.2\r\n")
	if err := (&HTTP{Addr: a, Host: "x"}).Check(ctx); err == nil || !strings.Contains(err.Error(), "malformed HTTP status line") {
		t.Fatalf("not HTTP: %v", err)
	}
}

// TestHTTPSResumesSessions: the second HTTPS probe of a listener resumes
// the first one's TLS session (no certificate, no signature) and neither
// offers the post-quantum key share.
func TestHTTPSResumesSessions(t *testing.T) {
	ca, _ := testcert.NewCA("ca")
	pemData, _ := ca.IssueValid("resume.campus.example")
	cert, err := tls.X509KeyPair(pemData, pemData)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var resumed []bool
	var groups [][]tls.CurveID
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			groups = append(groups, h.SupportedCurves)
			mu.Unlock()
			return nil, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			mu.Lock()
			resumed = append(resumed, cs.DidResume)
			mu.Unlock()
			return nil
		}}
	srv.StartTLS()
	defer srv.Close()
	p := &HTTP{Addr: addrOf(t, srv.URL), Host: "resume.campus.example", TLS: true}
	for range 3 {
		if err := p.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(resumed, []bool{false, true, true}) {
		t.Errorf("sessions resumed %v, want a full handshake then two resumptions", resumed)
	}
	for _, g := range groups {
		if slices.Contains(g, tls.X25519MLKEM768) || !slices.Contains(g, tls.X25519) {
			t.Errorf("key exchanges offered %v, want X25519 (and P-256) without X25519MLKEM768", g)
		}
	}
}

// A probe of one of this host's addresses comes from that address (what
// the kernel would pick, given to it so that it skips source address
// selection); a probe of an address that is not this host's still gets
// through with a source the kernel picks.
func TestProbeSourceAddress(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		host := map[string]string{"tcp4": "127.0.0.1", "tcp6": "[::1]"}[network]
		ln, err := net.Listen(network, host+":0")
		if err != nil {
			t.Logf("%s: %v (no such address here)", network, err)
			continue
		}
		from := make(chan net.Addr, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				from <- c.RemoteAddr()
				c.Close()
			}
		}()
		addr := netip.MustParseAddrPort(ln.Addr().String())
		if err := (&TCP{Addr: addr}).Check(t.Context()); err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		got := netip.MustParseAddrPort((<-from).String())
		if got.Addr() != addr.Addr() || got.Port() == 0 || got.Port() == addr.Port() {
			t.Errorf("%s: probe of %v came from %v, want %v and a port of its own", network, addr, got, addr.Addr())
		}
		ln.Close()
	}
	// 192.0.2.1 is not this host's: no "cannot assign requested address"
	// from the bind, the connection is attempted (and fails or times out).
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	c, err := dial(ctx, netip.MustParseAddrPort("192.0.2.1:9"))
	if err == nil {
		c.Close()
	} else if strings.Contains(err.Error(), "bind") {
		t.Errorf("dial of a foreign address: %v, want the kernel to pick the source", err)
	}
}
