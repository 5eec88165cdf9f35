package health

import "testing"

func TestTracker(t *testing.T) {
	tr := NewTracker(3, 2)
	steps := []struct {
		ok, changed, healthy, changing bool
	}{
		{true, false, false, true},
		{true, false, false, true},
		{true, true, true, false}, // rise 3
		{false, false, true, true},
		{true, false, true, false}, // a single failure is forgiven
		{false, false, true, true},
		{false, true, false, false}, // fall 2
		{true, false, false, true},
		{false, false, false, false}, // the rise run starts over
	}
	for i, s := range steps {
		if got := tr.Observe(s.ok); got != s.changed || tr.Healthy() != s.healthy || tr.Changing() != s.changing {
			t.Fatalf("step %d: changed=%v healthy=%v changing=%v, want %+v", i, got, tr.Healthy(), tr.Changing(), s)
		}
	}
	for range 3 {
		tr.Observe(true)
	}
	if !tr.Healthy() || !tr.Down() || tr.Healthy() || tr.Down() {
		t.Fatal("Down must mark a healthy VIP down at once, and only once")
	}
	if tr.Transitions != 4 {
		t.Fatalf("transitions = %d", tr.Transitions)
	}
}
