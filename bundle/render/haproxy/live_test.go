//go:build linux

package haproxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
	"github.com/lbctl/lbctl/test/netnstest"
)

// Client addresses of the live tests: one inside web/b's allowed sources,
// one outside.
const (
	allowedClient = "198.51.100.7"
	deniedClient  = "203.0.113.200"
)

// liveVIP renders one VIP of the feature-rich model, starts HAProxy with it
// in a throwaway network namespace (VIP, backend and client addresses on
// lo) and returns the namespace.
func liveVIP(t *testing.T, vip string, extraAddrs ...string) (ns *netnstest.NS, config string) {
	t.Helper()
	return liveSiteVIP(t, rendertest.Site(), vip, extraAddrs...)
}

// liveSiteVIP is liveVIP of a VIP of site.
func liveSiteVIP(t *testing.T, site *model.Site, vip string, extraAddrs ...string) (ns *netnstest.NS, config string) {
	t.Helper()
	netnstest.RequireRoot(t)
	rendertest.NeedTool(t, "haproxy")
	if err := site.Validate(); err != nil {
		t.Fatal(err)
	}
	v := site.VIP(vip)
	dir := t.TempDir()
	opts := haproxy.Options{
		CertDir:    filepath.Join(dir, "certs"),
		VIPDir:     filepath.Join(dir, "vips"),
		RuntimeDir: filepath.Join(dir, "run"),
		// HAProxy needs about 2 x maxconn descriptors; the systemd unit
		// allows plenty, a test process inherits the shell's limit.
		MaxConn: 1000,
	}
	rendertest.WriteCert(t, opts.CertDir, "a.example.org", "a.example.org", "www.a.example.org")
	rendertest.WriteCert(t, opts.CertDir, "wildcard.example.org", "*.example.org")
	rendertest.WriteCert(t, opts.CertDir, "ldap.example.org")
	files, err := haproxy.Render(site, v, opts)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, f := range files {
		m[f.Name] = f.Data
	}
	vdir := filepath.Join(opts.VIPDir, v.Name)
	rendertest.WriteFiles(t, vdir, m)
	if err := os.MkdirAll(filepath.Dir(haproxy.AdminSocket(opts.RuntimeDir, v.Name)), 0o700); err != nil {
		t.Fatal(err)
	}

	ns = netnstest.New(t, "rhap")
	local := []string{allowedClient, deniedClient}
	for _, a := range v.Addresses {
		local = append(local, a.String())
	}
	for _, a := range append(local, extraAddrs...) {
		ip := netip.MustParseAddr(a)
		if ip.Is4() {
			ns.AddAddr(t, "lo", a+"/32")
		} else {
			ns.IP(t, "-6", "addr", "add", a+"/128", "dev", "lo", "nodad")
		}
	}
	return ns, filepath.Join(vdir, haproxy.ConfigName)
}

func startHAProxy(t *testing.T, ns *netnstest.NS, cfg string) *netnstest.Proc {
	t.Helper()
	p := ns.Start(t, "haproxy", "-f", cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy output:\n%s", p.Output())
		}
	})
	return p
}

// serveHTTP starts an HTTP(S) server on addr inside ns that answers every
// request with what it saw.
func serveHTTP(t *testing.T, ns *netnstest.NS, name, addr string, cert *tls.Certificate) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "server=%s\nhost=%s\npath=%s\nxff=%s\nproto=%s\n", name, r.Host, r.URL.Path,
				r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// client returns an HTTP client whose connections start inside ns from
// local and go to target (the VIP address) whatever the URL's host, which
// only sets Host and SNI. Redirects are not followed.
func client(ns *netnstest.NS, local, target string, tlsCfg *tls.Config) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		var c net.Conn
		err := ns.Do(func() error {
			d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
			var err error
			c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(target, port))
			return err
		})
		return c, err
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg.InsecureSkipVerify = true
	return &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{DialContext: dial, TLSClientConfig: tlsCfg, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type reply struct {
	status int
	header http.Header
	body   map[string]string
	certs  []string
	tlsVer uint16
}

func get(c *http.Client, url string) (reply, error) {
	resp, err := c.Get(url)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: map[string]string{}}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			r.body[k] = v
		}
	}
	if resp.TLS != nil {
		r.certs = resp.TLS.PeerCertificates[0].DNSNames
		r.tlsVer = resp.TLS.Version
	}
	return r, nil
}

// eventually retries fn for up to 10 s (HAProxy starting, first checks).
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLiveHTTP serves the three web services sharing VIP 192.0.2.10 with
// the rendered configuration and checks what clients get: Host routing and
// the default service, SNI certificate selection through the crt-list,
// per-SNI TLS policy, the HTTP to HTTPS redirect of one service, path
// redirects, HSTS, X-Forwarded-For/-Proto, the client ACL, TLS to the
// servers and IPv6.
func TestLiveHTTP(t *testing.T) {
	backends := []string{"203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14", "203.0.113.15"}
	ns, cfg := liveVIP(t, "192.0.2.10", backends...)
	certDir := t.TempDir()
	bcert, err := tls.LoadX509KeyPair(rendertest.WriteCert(t, certDir, "c1"), filepath.Join(certDir, "c1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	serveHTTP(t, ns, "web1", "203.0.113.11:8080", nil)
	serveHTTP(t, ns, "web2", "203.0.113.12:8080", nil)
	serveHTTP(t, ns, "b1", "203.0.113.13:80", nil)
	serveHTTP(t, ns, "c1", "203.0.113.14:443", &bcert)
	serveHTTP(t, ns, "c2", "203.0.113.15:443", &bcert)
	startHAProxy(t, ns, cfg)

	c := client(ns, allowedClient, "192.0.2.10", nil)
	var r reply
	eventually(t, "https://a.example.org/", func() error {
		var err error
		r, err = get(c, "https://a.example.org/")
		if err == nil && r.status != 200 {
			err = fmt.Errorf("status %d", r.status)
		}
		return err
	})
	if r.body["server"] != "web1" && r.body["server"] != "web2" {
		t.Errorf("a.example.org served by %q", r.body["server"])
	}
	if !contains(r.certs, "a.example.org") {
		t.Errorf("a.example.org got certificate for %v", r.certs)
	}
	if r.body["xff"] != allowedClient || r.body["proto"] != "https" {
		t.Errorf("a.example.org: X-Forwarded-For %q, X-Forwarded-Proto %q", r.body["xff"], r.body["proto"])
	}
	if h := r.header.Get("Strict-Transport-Security"); h != "max-age=31536000" {
		t.Errorf("a.example.org: HSTS %q", h)
	}

	for _, tc := range []struct {
		name, url, local string
		tlsCfg           *tls.Config
		status           int
		server, location string
		cert             string
		noHSTS           bool
	}{
		{name: "alias by Host", url: "http://www.a.example.org/x", local: allowedClient, status: 200, server: "web"},
		{name: "unknown host goes to the default", url: "http://nowhere.example/", local: deniedClient, status: 200, server: "web"},
		{name: "path redirect", url: "http://a.example.org/old/page", local: allowedClient, status: 301, location: "/new"},
		{name: "path redirect exact", url: "http://a.example.org/old", local: allowedClient, status: 301, location: "/new"},
		{name: "no redirect on prefix of a segment", url: "http://a.example.org/older", local: allowedClient, status: 200, server: "web"},
		{name: "redirect to another site", url: "https://a.example.org/docs/x", local: allowedClient, status: 302, location: "https://docs.example.org/"},
		{name: "http plain has no HSTS", url: "http://a.example.org/", local: allowedClient, status: 200, server: "web", noHSTS: true},
		{name: "b redirects to https", url: "http://b.example.org/p?q=1", local: allowedClient, status: 301, location: "https://b.example.org/p?q=1"},
		{name: "b by SNI and Host", url: "https://b.example.org/", local: allowedClient, status: 200, server: "b1", cert: "*.example.org"},
		{name: "b denies other clients", url: "https://b.example.org/", local: deniedClient, status: 403},
		{name: "b denies other clients on 80 too", url: "http://b.example.org/", local: deniedClient, status: 403},
		{name: "c with TLS to the servers", url: "https://c.example.org/", local: deniedClient, status: 200, server: "c", cert: "*.example.org"},
		{name: "c TLS 1.2 allowed", url: "https://c.example.org/", local: allowedClient, tlsCfg: &tls.Config{MaxVersion: tls.VersionTLS12}, status: 200, server: "c"},
		{name: "a TLS 1.2 allowed", url: "https://a.example.org/", local: allowedClient, tlsCfg: &tls.Config{MaxVersion: tls.VersionTLS12}, status: 200, server: "web"},
	} {
		r, err := get(client(ns, tc.local, "192.0.2.10", tc.tlsCfg), tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, r.status, tc.status, r.body)
		}
		if tc.server != "" && !strings.HasPrefix(r.body["server"], tc.server) {
			t.Errorf("%s: served by %q, want %s*", tc.name, r.body["server"], tc.server)
		}
		if tc.location != "" && r.header.Get("Location") != tc.location {
			t.Errorf("%s: Location %q, want %q", tc.name, r.header.Get("Location"), tc.location)
		}
		if tc.cert != "" && !contains(r.certs, tc.cert) {
			t.Errorf("%s: certificate for %v, want %s", tc.name, r.certs, tc.cert)
		}
		if tc.noHSTS && r.header.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS on plain http", tc.name)
		}
	}

	// b.example.org is TLS 1.3 only (modern profile, per-SNI policy in the
	// crt-list), while c.example.org on the same port accepts TLS 1.2.
	if _, err := get(client(ns, allowedClient, "192.0.2.10", &tls.Config{MaxVersion: tls.VersionTLS12}), "https://b.example.org/"); err == nil {
		t.Error("b.example.org accepted TLS 1.2")
	}
	r, err = get(client(ns, allowedClient, "192.0.2.10", nil), "https://b.example.org/")
	if err != nil || r.tlsVer != tls.VersionTLS13 {
		t.Errorf("b.example.org: %v, TLS version %x", err, r.tlsVer)
	}

	// IPv6: same services on the VIP's IPv6 address.
	r, err = get(client(ns, "2001:db8::10", "2001:db8::10", nil), "https://a.example.org/")
	if err != nil || r.status != 200 || !strings.HasPrefix(r.body["server"], "web") || r.body["xff"] != "2001:db8::10" {
		t.Errorf("IPv6: %v %+v", err, r)
	}
}

// TestLiveQuotedValues: values the grammar admits but HAProxy reads
// specially (single quotes, '#', '$', '%', '&', parentheses) are written so that
// HAProxy serves them literally: the redirect targets come back in the
// Location header byte for byte, and the health check with a query and a
// percent-encoded path keeps the server up.
func TestLiveQuotedValues(t *testing.T) {
	site := rendertest.Site()
	a := site.Service("web/a")
	a.Redirects = []model.Redirect{
		{From: "/docs/", To: "https://docs.example.org/a%20b?x='1'&y=$HOME#frag", Code: 302},
		{From: "/old", To: "/new(1)?q=%[src]&r=$X#top", Code: 301},
	}
	a.Backend.Check.Path = "/health?probe=1&x=%41"
	ns, cfg := liveSiteVIP(t, site, "192.0.2.10", "203.0.113.11", "203.0.113.12")
	if out, err := rendertest.Run(rendertest.NeedTool(t, "haproxy"), "-c", "-f", cfg); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	serveHTTP(t, ns, "web1", "203.0.113.11:8080", nil)
	serveHTTP(t, ns, "web2", "203.0.113.12:8080", nil)
	startHAProxy(t, ns, cfg)
	c := client(ns, allowedClient, "192.0.2.10", nil)
	for _, tc := range []struct{ url, location string }{
		{"http://a.example.org/docs/x", a.Redirects[0].To},
		{"http://a.example.org/old", a.Redirects[1].To},
	} {
		var r reply
		eventually(t, tc.url, func() error {
			var err error
			r, err = get(c, tc.url)
			if err == nil && r.header.Get("Location") != tc.location {
				err = fmt.Errorf("status %d, Location %q, want %q", r.status, r.header.Get("Location"), tc.location)
			}
			return err
		})
	}
	eventually(t, "served with the quoted check path", func() error {
		r, err := get(c, "http://a.example.org/x")
		if err == nil && (r.status != 200 || !strings.HasPrefix(r.body["server"], "web")) {
			err = fmt.Errorf("status %d from %q", r.status, r.body["server"])
		}
		return err
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestLiveProxyV2 serves SMTP on VIP 192.0.2.20 and checks that the server
// receives the client's address in a PROXY v2 header, and that the smtpchk
// health check (which also sends PROXY) keeps the servers up.
func TestLiveProxyV2(t *testing.T) {
	ns, cfg := liveVIP(t, "192.0.2.20", "203.0.113.21", "203.0.113.22", "203.0.113.31")
	for _, a := range []string{"203.0.113.21:25", "203.0.113.22:25", "203.0.113.21:587", "203.0.113.22:587", "203.0.113.21:465", "203.0.113.22:465"} {
		serveSMTP(t, ns, a)
	}
	startHAProxy(t, ns, cfg)
	for _, vip := range []string{"192.0.2.20", "2001:db8::20"} {
		local := allowedClient
		if strings.Contains(vip, ":") {
			local = vip
		}
		var greeting string
		eventually(t, "smtp greeting via "+vip, func() error {
			var conn net.Conn
			if err := ns.Do(func() error {
				d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
				var err error
				conn, err = d.Dial("tcp", net.JoinHostPort(vip, "25"))
				return err
			}); err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			greeting = line
			return err
		})
		if !strings.HasPrefix(greeting, "220 ") || !strings.Contains(greeting, "proxy-from="+local+" ") {
			t.Errorf("via %s: greeting %q, want the client address %s from PROXY v2", vip, greeting, local)
		}
	}
}

// serveSMTP answers like a minimal SMTP server that requires a PROXY v2
// header and greets with the source address it carried.
func serveSMTP(t *testing.T, ns *netnstest.NS, addr string) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				src, err := readProxyV2(br)
				if err != nil {
					fmt.Fprintf(c, "421 %v\r\n", err)
					return
				}
				fmt.Fprintf(c, "220 mx proxy-from=%s ESMTP\r\n", src)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(strings.ToUpper(line), "QUIT") {
						fmt.Fprintf(c, "221 bye\r\n")
						return
					}
					fmt.Fprintf(c, "250 mx\r\n")
				}
			}(c)
		}
	}()
}

// readProxyV2 reads a PROXY protocol v2 header and returns the source
// address ("LOCAL" for health checks without addresses).
func readProxyV2(r *bufio.Reader) (string, error) {
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return "", err
	}
	if string(hdr[:12]) != "\r\n\r\n\x00\r\nQUIT\n" {
		return "", fmt.Errorf("no PROXY v2 signature")
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[14:16]))
	if _, err := io.ReadFull(r, body); err != nil {
		return "", err
	}
	switch {
	case hdr[12]&0x0f == 0:
		return "LOCAL", nil
	case hdr[13]>>4 == 1 && len(body) >= 12:
		return netip.AddrFrom4([4]byte(body[0:4])).String(), nil
	case hdr[13]>>4 == 2 && len(body) >= 36:
		return netip.AddrFrom16([16]byte(body[0:16])).String(), nil
	}
	return "", fmt.Errorf("PROXY v2 family %x", hdr[13])
}
