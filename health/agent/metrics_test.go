package agent

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lbctl/lbctl/health"
)

// The transitions metric is a counter that follows the trackers' counts
// and loses the series of a VIP no longer installed.
func TestTransitionsCounter(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := New(Config{Metrics: NewMetrics(reg)})
	ta, tb := health.NewTracker(1, 1), health.NewTracker(1, 1)
	setVIPs(a, []health.VIP{{Name: "a"}, {Name: "b"}}, ta, tb)
	a.updateMetrics()
	ta.Transitions = 3
	a.updateMetrics()
	a.updateMetrics()
	tb.Transitions = 1
	a.updateMetrics()
	m := a.cfg.Metrics.Transitions
	if v := testutil.ToFloat64(m.WithLabelValues("a")); v != 3 {
		t.Errorf("a: %v, want 3", v)
	}
	if v := testutil.ToFloat64(m.WithLabelValues("b")); v != 1 {
		t.Errorf("b: %v, want 1", v)
	}
	setVIPs(a, []health.VIP{{Name: "a"}}, ta)
	a.updateMetrics()
	if n := testutil.CollectAndCount(m, "lbctl_vip_health_transitions_total"); n != 1 {
		t.Errorf("%d series after b left, want 1", n)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// setVIPs gives the agent VIPs with the trackers, as a reload would.
func setVIPs(a *Agent, vips []health.VIP, trackers ...*health.Tracker) {
	a.vips, a.order = map[string]*vipState{}, nil
	for i, v := range vips {
		s := &vipState{vip: v, tracker: trackers[i]}
		a.vips[v.Name] = s
		a.order = append(a.order, s)
	}
}

// Each state event of an installed VIP's HAProxy counts once in
// lbctl_haproxy_state_events_total and in the VIP's status; an event for a
// VIP not installed counts nowhere, and the series goes with its VIP.
func TestStateEventsCounter(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := New(Config{Metrics: NewMetrics(reg)})
	setVIPs(a, []health.VIP{{Name: "a"}, {Name: "b"}}, health.NewTracker(1, 1), health.NewTracker(1, 1))
	a.updateMetrics()
	for _, vip := range []string{"a", "a", "b", "gone"} {
		a.backendEvent(BackendEvent{VIP: vip, Text: "Server be/s1 enters drain state."})
	}
	m := a.cfg.Metrics.StateEvents
	if v := testutil.ToFloat64(m.WithLabelValues("a")); v != 2 {
		t.Errorf("a: %v, want 2", v)
	}
	if n := testutil.CollectAndCount(m, "lbctl_haproxy_state_events_total"); n != 2 {
		t.Errorf("%d series, want 2 (a, b; none for a VIP not installed)", n)
	}
	for _, v := range a.Status().VIPs {
		if want := map[string]int{"a": 2, "b": 1}[v.Name]; v.StateEvents != want {
			t.Errorf("status of %s: %d state events, want %d", v.Name, v.StateEvents, want)
		}
	}
	setVIPs(a, []health.VIP{{Name: "a"}}, health.NewTracker(1, 1))
	a.updateMetrics()
	if n := testutil.CollectAndCount(m, "lbctl_haproxy_state_events_total"); n != 1 {
		t.Errorf("%d series after b left, want 1", n)
	}
}
