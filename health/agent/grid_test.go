package agent

import (
	"testing"
	"time"
)

func TestStallPeriodOnTheSteadyGrid(t *testing.T) {
	for _, c := range []struct {
		stall, interval, fast, want time.Duration
	}{
		{200 * time.Millisecond, time.Second, 200 * time.Millisecond, 200 * time.Millisecond},
		{150 * time.Millisecond, time.Second, 200 * time.Millisecond, 200 * time.Millisecond},
		{120 * time.Millisecond, time.Second, 200 * time.Millisecond, 100 * time.Millisecond},
		// Finer than the steady grid: on the slot grid (25 ms here).
		{20 * time.Millisecond, time.Second, 200 * time.Millisecond, 25 * time.Millisecond},
		{60 * time.Millisecond, 500 * time.Millisecond, 100 * time.Millisecond, 50 * time.Millisecond},
	} {
		a := &Agent{cfg: Config{StallInterval: c.stall, Interval: c.interval, FastInterval: c.fast}}
		if got := a.stallPeriod(); got != c.want {
			t.Errorf("stall %v, interval %v, fast %v: period %v, want %v", c.stall, c.interval, c.fast, got, c.want)
		}
	}
}

func TestUntilBeforeLandsLeadBeforeTheGrid(t *testing.T) {
	base := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	lead := 200 * time.Microsecond
	for _, c := range []struct {
		now, want time.Duration // since base
	}{
		{0, 200*time.Millisecond - lead},
		{10 * time.Millisecond, 200*time.Millisecond - lead},
		// At the moment of a look: the next one, never the same.
		{200*time.Millisecond - lead, 400*time.Millisecond - lead},
		{200*time.Millisecond - lead/2, 400*time.Millisecond - lead},
	} {
		now := base.Add(c.now)
		if got := now.Add(untilBefore(now, 200*time.Millisecond, lead)).Sub(base); got != c.want {
			t.Errorf("at +%v: next look at +%v, want +%v", c.now, got, c.want)
		}
	}
}
