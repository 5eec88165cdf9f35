package health

// Tracker debounces one VIP's health: it turns healthy after Rise passing
// evaluations in a row and unhealthy after Fall failing ones. It starts
// unhealthy, so a VIP is never announced before it proved itself Rise times.
type Tracker struct {
	Rise, Fall int
	healthy    bool
	run        int // consecutive evaluations disagreeing with the state
	// Transitions counts state changes.
	Transitions int
}

// NewTracker returns a tracker that starts unhealthy.
func NewTracker(rise, fall int) *Tracker {
	if rise < 1 {
		rise = 1
	}
	if fall < 1 {
		fall = 1
	}
	return &Tracker{Rise: rise, Fall: fall}
}

// Healthy reports the debounced state.
func (t *Tracker) Healthy() bool { return t.healthy }

// Changing reports whether the tracker is part way through a transition;
// the agent polls faster then.
func (t *Tracker) Changing() bool { return t.run > 0 }

// Observe records one evaluation and reports whether the state changed.
func (t *Tracker) Observe(ok bool) bool {
	if ok == t.healthy {
		t.run = 0
		return false
	}
	t.run++
	need := t.Rise
	if t.healthy {
		need = t.Fall
	}
	if t.run < need {
		return false
	}
	t.healthy, t.run = ok, 0
	t.Transitions++
	return true
}

// Resume marks the VIP healthy at once without counting a transition: the
// agent restarted while the VIP was announced, so its rise was met before;
// the caller has just seen it pass.
func (t *Tracker) Resume() {
	t.healthy, t.run = true, 0
}

// Down marks the VIP unhealthy at once (a listener closed) and reports
// whether the state changed. Coming back still takes Rise evaluations.
func (t *Tracker) Down() bool {
	t.run = 0
	if !t.healthy {
		return false
	}
	t.healthy = false
	t.Transitions++
	return true
}
