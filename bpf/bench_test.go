//go:build linux

package bpf

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkListeners measures one listing of a namespace with four
// listeners: the eBPF iterator and sock_diag, in a namespace sharing the
// host's established hash (the default) and in one with its own 1024-entry
// hash (net.ipv4.tcp_child_ehash_entries set in the parent namespace);
// then 150 listeners through sock_diag with a socket per listing and
// with DiagSocket's kept socket.
//
//	go test -run '^$' -bench Listeners -benchtime 2000x ./bpf/
func BenchmarkListeners(b *testing.B) {
	p := mustLoad(b)
	for _, ehash := range []int{0, 1024} {
		ns := newNetNS(b, ehash)
		for i := range 4 {
			ns.listen(b, netip.AddrPortFrom(vip4.Addr(), uint16(8000+i)), 16)
		}
		for _, l := range []struct {
			name string
			l    Lister
		}{{"iter", p}, {"sockdiag", SockDiag{}}} {
			b.Run(fmt.Sprintf("%s/child_ehash=%d", l.name, ehash), func(b *testing.B) {
				for b.Loop() {
					ls, err := l.l.Listeners(ns.fd())
					if err != nil || len(ls) != 4 {
						b.Fatalf("got %d listeners (%v), want 4", len(ls), err)
					}
				}
			})
		}
	}
	ns := newNetNS(b, 0)
	var d *DiagSocket
	ns.do(b, func() (err error) {
		d, err = OpenDiagSocket()
		return err
	})
	defer d.Close()
	for i := range 150 {
		ns.listen(b, netip.AddrPortFrom(vip4.Addr(), uint16(8000+i)), 16)
	}
	for _, l := range []struct {
		name string
		list func() ([]Listener, error)
	}{
		{"sockdiag", func() ([]Listener, error) { return SockDiag{}.Listeners(ns.fd()) }},
		{"diagsocket", func() ([]Listener, error) { return d.Listeners(-1) }},
	} {
		b.Run(l.name+"/150", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ls, err := l.list(); err != nil || len(ls) != 150 {
					b.Fatalf("got %d listeners (%v), want 150", len(ls), err)
				}
			}
		})
	}
	b.Run("iter/host", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Listeners(-1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sockdiag/host", func(b *testing.B) {
		for b.Loop() {
			if _, err := (SockDiag{}).Listeners(-1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
