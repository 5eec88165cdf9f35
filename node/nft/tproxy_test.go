package nft

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/test/netnstest"
)

const haproxyBin = "/usr/sbin/haproxy"

// TestTProxyEndToEnd runs HAProxy with `source 0.0.0.0 usesrc clientip` for
// a transparent VIP in an LB namespace that routes between a client and a
// backend namespace. With the table (Transparent) and the TPROXY policy
// routing in place, the backend sees the client's own address and the
// response gets back to the client. Two controls show that both pieces are
// needed: without the policy routing, or without the socket mark, the
// backend's replies are forwarded to the client instead of being delivered
// to HAProxy, and the request fails.
func TestTProxyEndToEnd(t *testing.T) {
	if _, err := os.Stat(haproxyBin); err != nil {
		t.Skipf("needs %s (Debian package haproxy): %v", haproxyBin, err)
	}
	client := netnstest.New(t, "tp-client")
	lb := netnstest.New(t, "tp-lb")
	backend := netnstest.New(t, "tp-backend")
	netnstest.Veth(t, client, "198.51.100.1/24,2001:db8:100::1/64", lb, "198.51.100.2/24,2001:db8:100::2/64")
	netnstest.Veth(t, lb, "203.0.113.1/24,2001:db8:200::1/64", backend, "203.0.113.2/24,2001:db8:200::2/64")
	client.IP(t, "route", "add", "default", "via", "198.51.100.2")
	client.IP(t, "-6", "route", "add", "default", "via", "2001:db8:100::2")
	backend.IP(t, "route", "add", "default", "via", "203.0.113.1")
	backend.IP(t, "-6", "route", "add", "default", "via", "2001:db8:200::1")
	lb.Exec(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")

	// Backend: a Go HTTP server in the backend namespace that echoes the
	// peer address it sees.
	seen := make(chan string, 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.RemoteAddr:
		default:
		}
		io.WriteString(w, r.RemoteAddr)
	})}
	for _, addr := range []string{"203.0.113.2:8080", "[2001:db8:200::2]:8080"} {
		var ln net.Listener
		if err := backend.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })

	// LB: VIP, firewall, TPROXY routing, HAProxy.
	const vip4, vip6 = "192.0.2.20", "2001:db8::20"
	nl, err := netlink.New(netlink.WithNetNS(lb.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.EnsureTProxy(true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{vip4 + "/32", vip6 + "/128"} {
		if err := nl.AddVIP(netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	ip4, ip6 := netip.MustParseAddr(vip4), netip.MustParseAddr(vip6)
	fw := model.Firewall{
		VIPs4:       []netip.Addr{ip4},
		VIPs6:       []netip.Addr{ip6},
		Accept4:     []model.AddrPort{{Addr: ip4, Port: 80}},
		Accept6:     []model.AddrPort{{Addr: ip6, Port: 80}},
		Transparent: true,
	}
	k, err := New(WithNetNS(lb.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(fw); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(`global
	maxconn 100
defaults
	mode http
	retries 0
	timeout connect 500ms
	timeout client 5s
	timeout server 5s
listen vip4
	bind `+vip4+`:80
	source 0.0.0.0 usesrc clientip
	server backend 203.0.113.2:8080
listen vip6
	bind [`+vip6+`]:80
	source [::] usesrc clientip
	server backend [2001:db8:200::2]:8080
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxyBin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	hp := lb.Start(t, haproxyBin, "-db", "-f", cfg)

	// Client: HTTP over connections dialled inside the client namespace.
	httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := client.Do(func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	get := func(vip string) (int, string, error) {
		resp, err := httpc.Get("http://" + net.JoinHostPort(vip, "80") + "/")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// Wait for HAProxy to listen (bounded).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c net.Conn
		err := client.Do(func() (err error) { c, err = net.DialTimeout("tcp", vip4+":80", 200*time.Millisecond); return err })
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-hp.Done():
			t.Fatalf("haproxy exited: %v\n%s", hp.Wait(0), hp.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy not listening on %s:80 after 10 s: %v\n%s", vip4, err, hp.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}

	clientAddr := map[string]string{vip4: "198.51.100.1", vip6: "2001:db8:100::1"}
	expectClientAddr := func(stage string) {
		t.Helper()
		for _, vip := range []string{vip4, vip6} {
			code, body, err := get(vip)
			if err != nil || code != http.StatusOK {
				t.Fatalf("%s: GET %s = %d %q, %v\nhaproxy:\n%s", stage, vip, code, body, err, hp.Output())
			}
			if host, _, _ := net.SplitHostPort(body); host != clientAddr[vip] {
				t.Fatalf("%s: %s: client got %q, want the client's address as seen by the backend", stage, vip, body)
			}
			select {
			case got := <-seen:
				if host, _, _ := net.SplitHostPort(got); host != clientAddr[vip] {
					t.Fatalf("%s: %s: backend saw %s, want %s", stage, vip, got, clientAddr[vip])
				}
			case <-time.After(time.Second):
				t.Fatalf("%s: %s: backend saw no request", stage, vip)
			}
			t.Logf("%s: via %s the backend saw the client address %s", stage, vip, body)
		}
	}
	expectFailure := func(stage string) {
		t.Helper()
		for _, vip := range []string{vip4, vip6} {
			code, body, err := get(vip)
			if err == nil && code == http.StatusOK {
				t.Fatalf("%s: %s: request succeeded (%q); the control does not control anything", stage, vip, body)
			}
			t.Logf("%s: %s: request failed as expected: %d %v", stage, vip, code, err)
		}
		for len(seen) > 0 {
			<-seen
		}
	}

	expectClientAddr("transparent")

	// Control 1: no policy routing.
	if err := nl.EnsureTProxy(false); err != nil {
		t.Fatal(err)
	}
	expectFailure("without TPROXY routing")
	if err := nl.EnsureTProxy(true); err != nil {
		t.Fatal(err)
	}
	expectClientAddr("TPROXY routing restored")

	// Control 2: no socket mark.
	fw.Transparent = false
	if err := k.Apply(fw); err != nil {
		t.Fatal(err)
	}
	expectFailure("without the transparent-socket mark")
	fw.Transparent = true
	if err := k.Apply(fw); err != nil {
		t.Fatal(err)
	}
	expectClientAddr("mark restored")

	// HAProxy stops on SIGTERM; cleanup would SIGKILL it otherwise.
	if err := hp.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hp.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("haproxy still running 5 s after SIGTERM")
	}
}
