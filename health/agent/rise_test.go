package agent

import (
	"slices"
	"testing"
	"time"
)

// TestRiseAfterListenerEvents: a restarted HAProxy opens its listeners one
// after the other, one event each. The events pull the next evaluation
// forward (no waiting for the slow interval), but Rise still counts
// evaluations FastInterval apart: a burst of events must not count as Rise
// passing evaluations within a millisecond.
func TestRiseAfterListenerEvents(t *testing.T) {
	const rise, fast = 3, 50 * time.Millisecond
	o := startOneVIP(t, Config{Interval: time.Hour, FastInterval: fast, Rise: rise, Fall: 2})
	events, addr, ann, want := o.events, o.addr, o.ann, o.want
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
