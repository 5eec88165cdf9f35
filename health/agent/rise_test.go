package agent

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// TestRiseAfterListenerEvents: a restarted HAProxy opens its listeners one
// after the other, one event each. The events pull the next evaluation
// forward (no waiting for the slow interval), but Rise still counts
// evaluations FastInterval apart: a burst of events must not count as Rise
// passing evaluations within a millisecond.
func TestRiseAfterListenerEvents(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	ln, addr := serve(t)
	defer ln.Close()
	vip := plan.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes: []plan.Probe{{Kind: plan.ProbeTCP, Addr: addr}}}
	store.WriteAnnounceable(release.Announceable{VIPs: []plan.VIP{vip}})
	ann := &fakeAnnouncer{ch: make(chan []netip.Prefix, 100)}
	events := make(chan ListenerEvent, 8)
	const rise, fast = 3, 50 * time.Millisecond
	a := New(Config{Store: store, Announcer: ann, Events: events, Interval: time.Hour, FastInterval: fast, Rise: rise, Fall: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}
	waitFor(t, "announced after rise", func() bool { return slices.Equal(ann.last(), want) })

	events <- ListenerEvent{Addr: addr, Up: false, At: time.Now()}
	waitFor(t, "withdrawn on close", func() bool { return len(ann.last()) == 0 })
	time.Sleep(2 * fast) // the last evaluation is now more than FastInterval ago

	start := time.Now()
	for range rise + 1 {
		events <- ListenerEvent{Addr: addr, Up: true, At: time.Now()}
	}
	waitFor(t, "announced again", func() bool { return slices.Equal(ann.last(), want) })
	if d, min := time.Since(start), time.Duration(rise-1)*fast; d < min {
		t.Errorf("announced %v after %d open events; Rise %d at FastInterval %v needs at least %v", d, rise+1, rise, fast, min)
	}
}
