package testbed

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/internal/testcert"
)

// startBackend runs a backend server on loopback with one ephemeral port
// per kind and returns the address of each kind.
func startBackend(t *testing.T, cfg BackendConfig) map[string]string {
	t.Helper()
	s, err := listenBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.serve(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	addrs := map[string]string{}
	for _, l := range s.listeners {
		addrs[l.kind] = l.ln.Addr().String()
	}
	return addrs
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// exchange connects, writes send, and reads until the server closes.
func exchange(t *testing.T, addr string, send []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if len(send) > 0 {
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return string(b)
}

func TestBackendServers(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := ca.IssueValid("web1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, "web1.pem")
	if err := os.WriteFile(cert, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := startBackend(t, BackendConfig{Name: "web1", Addr: "127.0.0.1", HTTP: []int{0}, HTTPS: []int{0},
		TCP: []int{0}, SMTP: []int{0}, LDAP: []int{0}, Cert: cert})
	client := netip.MustParseAddrPort("198.51.100.77:4321")
	vip := netip.MustParseAddrPort("192.0.2.10:80")

	t.Run("http", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+addrs[kindHTTP]+"/any/path", nil)
		req.Host = "www.tb.example"
		req.Header.Set("X-Forwarded-For", "198.51.100.130")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "backend=web1 host=www.tb.example xff=198.51.100.130 src=127.0.0.1:"
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), want) || resp.Header.Get("X-Backend") != "web1" {
			t.Errorf("%d %q, want prefix %q", resp.StatusCode, body, want)
		}
		if !strings.HasSuffix(string(body), " port="+portOf(addrs[kindHTTP])+" proxy-src=none\n") {
			t.Errorf("body %q: want port and proxy-src=none at the end", body)
		}
	})
	t.Run("http after PROXY v1", func(t *testing.T) {
		req := appendProxyV1(nil, client, vip)
		req = append(req, "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n"...)
		out := exchange(t, addrs[kindHTTP], req)
		if !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.Contains(out, "host=a.example xff=none") ||
			!strings.Contains(out, "proxy-src=198.51.100.77:4321\n") {
			t.Errorf("got %q", out)
		}
	})
	t.Run("https after PROXY v2", func(t *testing.T) {
		c, err := net.Dial("tcp", addrs[kindHTTPS])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(appendProxyV2(nil, client, vip))
		tc := tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "web1"})
		io.WriteString(tc, "GET / HTTP/1.1\r\nHost: s.example\r\nConnection: close\r\n\r\n")
		out, err := io.ReadAll(tc)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "backend=web1 host=s.example") || !strings.Contains(string(out), "proxy-src=198.51.100.77:4321") {
			t.Errorf("got %q", out)
		}
	})
	t.Run("tcp without header", func(t *testing.T) {
		out := exchange(t, addrs[kindTCP], nil)
		want := "backend=web1 port=" + portOf(addrs[kindTCP]) + " proxy-src=none src=127.0.0.1:"
		if !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
			t.Errorf("got %q, want one line starting %q", out, want)
		}
	})
	t.Run("tcp with PROXY v2", func(t *testing.T) {
		out := exchange(t, addrs[kindTCP], appendProxyV2(nil, client, vip))
		if !strings.Contains(out, " proxy-src=198.51.100.77:4321 src=127.0.0.1:") {
			t.Errorf("got %q", out)
		}
	})
	t.Run("smtp", func(t *testing.T) {
		out := exchange(t, addrs[kindSMTP], append(appendProxyV2(nil, client, vip), "EHLO x\r\nQUIT\r\n"...))
		lines := strings.Split(strings.TrimSpace(out), "\r\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "220 backend=web1 ") ||
			!strings.Contains(lines[0], "proxy-src=198.51.100.77:4321") || lines[1] != "250 ok" || lines[2] != "221 bye" {
			t.Errorf("got %q", lines)
		}
	})
	t.Run("ldap bind", func(t *testing.T) {
		// HAProxy's ldap-check: an anonymous LDAPv3 simple bind, message ID 1.
		bind := []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00}
		out := exchange(t, addrs[kindLDAP], bind)
		want := []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00}
		if !bytes.Equal([]byte(out), want) {
			t.Errorf("got % x, want % x", out, want)
		}
	})
	t.Run("ldap line", func(t *testing.T) {
		out := exchange(t, addrs[kindLDAP], nil)
		if !strings.HasPrefix(out, "backend=web1 port="+portOf(addrs[kindLDAP])+" proxy-src=none") {
			t.Errorf("got %q", out)
		}
	})
}

func TestBackendArgs(t *testing.T) {
	cfg := BackendConfig{Name: "mx1", HTTP: []int{80, 8080}, TCP: []int{3200}, SMTP: []int{25, 465}, LDAP: []int{389},
		HTTPS: []int{8443}, Cert: "/x/mx1.pem", Ready: "/x/ready"}
	got, err := parseBackendArgs(cfg.Args())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("round trip: %+v, want %+v", got, cfg)
	}
	for _, bad := range [][]string{
		{"--http", "80"},                       // no name
		{"--name", "a", "--https", "443"},      // no cert
		{"--name", "a", "--tcp", "x"},          // not a port
		{"--name", "a", "--tcp", "70000"},      // out of range
		{"--name", "a", "extra"},               // stray argument
		{"--name", "a", "--unknown-flag", "1"}, // unknown flag
	} {
		if _, err := parseBackendArgs(bad); err == nil {
			t.Errorf("parseBackendArgs(%q): no error", bad)
		}
	}
}
