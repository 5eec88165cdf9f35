//go:build linux

package backendfw_test

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/render/backendfw"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
	"github.com/lbctl/lbctl/test/netnstest"
)

// TestLiveBackendFirewall loads the snippets of two backend hosts in a
// throwaway namespace and connects from several sources: the LB nodes reach
// the service ports, strangers do not, ports outside the snippet stay open,
// the transparent service admits its clients, and the monitoring hosts reach
// the ports Icinga 2 checks and no other.
func TestLiveBackendFirewall(t *testing.T) {
	netnstest.RequireRoot(t)
	rendertest.NeedTool(t, "nft")
	lab, err := backendfw.Render(rendertest.Site())
	if err != nil {
		t.Fatal(err)
	}
	apart, err := backendfw.Render(labCheckPortApart())
	if err != nil {
		t.Fatal(err)
	}
	const (
		lb        = "198.51.100.11"
		client    = "198.51.100.7" // in erp/app's allowed sources
		stranger  = "192.0.2.99"
		monitor   = "198.51.100.60"     // the lab's monitoring host
		monitor6  = "2001:db8:ffff::60" // in the lab's monitoring prefix
		lb6       = "2001:db8:ffff::11"
		stranger6 = "2001:db8::99"
	)
	for _, tc := range []struct {
		name, host, addr string
		files            []backendfw.File
		open             map[string][]string // port -> sources that connect
		closed           map[string][]string // port -> sources that are dropped
	}{
		{
			name: "mx1", host: "mx1", addr: "203.0.113.21", files: lab,
			open:   map[string][]string{"25": {lb, monitor}, "465": {lb, monitor}, "22": {lb, stranger}},
			closed: map[string][]string{"25": {stranger, client}, "587": {stranger}},
		},
		{
			name: "erp1", host: "erp1", addr: "203.0.113.61", files: lab,
			open:   map[string][]string{"3200": {lb, client, monitor}, "3300": {client}},
			closed: map[string][]string{"3200": {stranger}},
		},
		{
			// Icinga 2 checks 9000; HAProxy's http check needs 8080,
			// which stays closed to the monitoring hosts.
			name: "web1 check port apart", host: "web1", addr: "203.0.113.11", files: apart,
			open:   map[string][]string{"9000": {lb, monitor}, "8080": {lb}},
			closed: map[string][]string{"9000": {stranger}, "8080": {monitor, stranger}},
		},
		{
			name: "ldap2 over IPv6", host: "ldap2", addr: "2001:db8:1::52", files: lab,
			open:   map[string][]string{"389": {lb6, monitor6}, "22": {stranger6}},
			closed: map[string][]string{"389": {stranger6}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.New(t, "rbfw")
			for _, a := range []string{tc.addr, lb, client, stranger, monitor, monitor6, lb6, stranger6} {
				ns.AddAddr(t, "lo", netip.PrefixFrom(netip.MustParseAddr(a), netip.MustParseAddr(a).BitLen()).String())
			}
			files := tc.files
			var snippet []byte
			for _, f := range files {
				if f.Path == backendfw.BackendDir+"/"+tc.host+".nft" {
					snippet = f.Data
				}
			}
			p := filepath.Join(t.TempDir(), tc.host+".nft")
			if err := os.WriteFile(p, snippet, 0o644); err != nil {
				t.Fatal(err)
			}
			ns.Exec(t, "nft", "-f", p)
			ports := map[string]bool{}
			for port := range tc.open {
				ports[port] = true
			}
			for port := range tc.closed {
				ports[port] = true
			}
			for port := range ports {
				var ln net.Listener
				if err := ns.Do(func() error {
					var err error
					ln, err = net.Listen("tcp", net.JoinHostPort(tc.addr, port))
					return err
				}); err != nil {
					t.Fatal(err)
				}
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
				t.Cleanup(func() { ln.Close() })
			}
			dial := func(src, port string) error {
				return ns.Do(func() error {
					d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
					c, err := d.Dial("tcp", net.JoinHostPort(tc.addr, port))
					if err == nil {
						c.Close()
					}
					return err
				})
			}
			for port, srcs := range tc.open {
				for _, src := range srcs {
					if err := dial(src, port); err != nil {
						t.Errorf("%s -> %s:%s: %v, want connected", src, tc.addr, port, err)
					}
				}
			}
			for port, srcs := range tc.closed {
				for _, src := range srcs {
					if err := dial(src, port); err == nil {
						t.Errorf("%s -> %s:%s connected, want dropped", src, tc.addr, port)
					}
				}
			}
		})
	}
}
