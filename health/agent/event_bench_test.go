package agent

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lbctl/lbctl/health"
)

type nopAnnouncer struct{}

func (nopAnnouncer) Request([]netip.Prefix)                    {}
func (nopAnnouncer) Set(context.Context, []netip.Prefix) error { return nil }

// BenchmarkListenerClose measures what a listener-close event costs the
// agent at 8, 150 and 500 healthy VIPs: the lookup, the withdrawal, the new
// announced set and the VIP's metrics (the announcer is a no-op). The
// listing of the announced set is linear in the VIPs (a sorted list of
// prefixes for BIRD); nothing else is.
func BenchmarkListenerClose(b *testing.B) {
	for _, n := range []int{8, 150, 500} {
		b.Run(fmt.Sprintf("vips=%d", n), func(b *testing.B) {
			a := New(Config{Announcer: nopAnnouncer{}, Metrics: NewMetrics(prometheus.NewRegistry())})
			var target *vipState
			for i := range n {
				addr := netip.AddrFrom4([4]byte{192, 0, byte(2 + i/250), byte(1 + i%250)})
				v := health.VIP{Name: fmt.Sprintf("v%03d", i), Addresses: []netip.Addr{addr},
					Probes: []health.Probe{{Kind: health.ProbeHTTP, Addr: netip.AddrPortFrom(addr, 80)}}}
				s := &vipState{vip: v, expected: health.Expected(&v), tracker: health.NewTracker(1, 1)}
				s.tracker.Observe(true)
				a.vips[v.Name], a.order = s, append(a.order, s)
				a.byAddr[s.expected[0]] = append(a.byAddr[s.expected[0]], s)
				target = s
				a.prefixes = append(a.prefixes, vipPrefix{netip.PrefixFrom(addr, 32), s})
			}
			a.publish(true)
			ev := ListenerEvent{Addr: target.expected[0], At: time.Now()}
			b.ResetTimer()
			for range b.N {
				a.event(ev)
				a.mu.Lock()
				target.tracker.Observe(true) // healthy again for the next round
				a.mu.Unlock()
			}
		})
	}
}
