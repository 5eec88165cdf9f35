//go:build linux

package handoff

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// benchSite is a two-node site with handoff attached, and one connection
// owned by node 1 whose route is either direct (router -> node 1) or
// forwarded (router -> node 2 -> VXLAN -> node 1).
func benchSite(b *testing.B) *site {
	s := newSite(b, 2)
	for i, node := range s.nodes {
		d := mustLoad(b)
		apply(b, d, Config{NetNS: node.Fd(), Uplinks: []string{s.uplinks[i]}, Local: s.addrs[i], Peers: s.peers(i), VIPs: []netip.AddrPort{vip, netip.AddrPortFrom(vip.Addr(), 81)}})
	}
	return s
}

// BenchmarkRoundTrip measures a 1-byte request/response on a connection
// owned by node 1: direct, and with the router sending it to node 2.
func BenchmarkRoundTrip(b *testing.B) {
	for _, fw := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "forwarded"}[fw]
		b.Run(name, func(b *testing.B) {
			s := benchSite(b)
			c := s.dial(b)
			s.mustAsk(b, c, "warm", 0)
			if fw {
				s.routeTo(b, 1)
			}
			s.mustAsk(b, c, "warm", 0)
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.ask("x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkThroughput measures client -> node 1 bulk transfer (the
// direction that is forwarded; replies go straight to the client).
func BenchmarkThroughput(b *testing.B) {
	for _, fw := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "forwarded"}[fw]
		b.Run(name, func(b *testing.B) {
			s := benchSite(b)
			// A sink on port 81 of the VIP, on node 1 only.
			sink := netip.AddrPortFrom(vip.Addr(), 81)
			var ln net.Listener
			if err := s.nodes[0].Do(func() (err error) { ln, err = net.Listen("tcp4", sink.String()); return err }); err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			got := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- -1
					return
				}
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				got <- n
			}()
			// Hand off port 81 too.
			var c net.Conn
			// The MSS the node's nftables clamp announces (model.HandoffMSS).
			d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, 1410) })
				return errors.Join(err, serr)
			}}
			if err := s.client.Do(func() (err error) { c, err = d.Dial("tcp4", sink.String()); return err }); err != nil {
				b.Fatal(err)
			}
			if fw {
				s.routeTo(b, 1)
			}
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			if n := <-got; n < int64(b.N)*int64(len(buf)) {
				b.Fatalf("sink got %d bytes, sent %d", n, int64(b.N)*int64(len(buf)))
			}
			c.Close()
		})
	}
}
