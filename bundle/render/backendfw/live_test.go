//go:build linux

package backendfw_test

import (
	"net"
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
// and the transparent service admits its clients.
func TestLiveBackendFirewall(t *testing.T) {
	netnstest.RequireRoot(t)
	rendertest.NeedTool(t, "nft")
	files, err := backendfw.Render(rendertest.Site())
	if err != nil {
		t.Fatal(err)
	}
	const (
		lb       = "198.51.100.11"
		client   = "198.51.100.7" // in erp/app's allowed sources
		stranger = "192.0.2.99"
	)
	for _, tc := range []struct {
		host, addr string
		open       map[string][]string // port -> sources that connect
		closed     map[string][]string // port -> sources that are dropped
	}{
		{
			host: "mx1", addr: "203.0.113.21",
			open:   map[string][]string{"25": {lb}, "465": {lb}, "22": {lb, stranger}},
			closed: map[string][]string{"25": {stranger, client}, "587": {stranger}},
		},
		{
			host: "erp1", addr: "203.0.113.61",
			open:   map[string][]string{"3200": {lb, client}, "3300": {client}},
			closed: map[string][]string{"3200": {stranger}},
		},
	} {
		t.Run(tc.host, func(t *testing.T) {
			ns := netnstest.New(t, "rbfw")
			for _, a := range []string{tc.addr, lb, client, stranger} {
				ns.AddAddr(t, "lo", a+"/32")
			}
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
