package agent

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the agent's Prometheus metrics. Every VIP label comes from
// the installed intents: a VIP that is not in them has no series.
type Metrics struct {
	Healthy      *prometheus.GaugeVec
	Announced    *prometheus.GaugeVec
	Drained      *prometheus.GaugeVec
	ProbeLatency *prometheus.GaugeVec
	Transitions  *prometheus.CounterVec
	// StateEvents counts the server and backend state changes each VIP's
	// HAProxy sent to the agent's events socket: a VIP whose HAProxy never
	// sends one while its servers change state is read only every
	// probe_interval (see health/haproxy's events).
	StateEvents *prometheus.CounterVec
	Serial      prometheus.Gauge
	LastInstall prometheus.Gauge
	EBPF        prometheus.Gauge
	// handoff reads the flow handoff counters at scrape time.
	handoff *handoffCollector
	// transitions is the count each VIP's Transitions counter shows.
	transitions map[string]int
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	vip := []string{"vip"}
	m := &Metrics{
		Healthy:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_healthy", Help: "1 if the VIP passes its health checks on this node."}, vip),
		Announced:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_announced", Help: "1 if this node asks BIRD to announce the VIP."}, vip),
		Drained:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_drained", Help: "1 if an operator drained the VIP on this node."}, vip),
		ProbeLatency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_probe_latency_seconds", Help: "Duration of the slowest active probe of the VIP's last evaluation."}, vip),
		Transitions:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lbctl_vip_health_transitions_total", Help: "Health state changes of the VIP since the agent started."}, vip),
		StateEvents:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lbctl_haproxy_state_events_total", Help: "Server and backend state changes the VIP's HAProxy reported to the agent since it started."}, vip),
		Serial:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "lbctl_bundle_serial", Help: "Serial of the announceable release."}),
		LastInstall:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "lbctl_last_install_success", Help: "1 if the last install committed, 0 if it was rolled back or failed."}),
		EBPF:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "lbctl_ebpf_probe", Help: "1 if the eBPF socket probe is in use, 0 for the sock_diag fallback."}),
		handoff: &handoffCollector{desc: prometheus.NewDesc("lbctl_handoff_packets_total",
			"Flow handoff packets since the agent started, by kind: forwarded to a peer, delivered or dropped after a peer forwarded them, refused, forward_errors, no_peer; filter_refused counts encapsulated packets from non-peers the packet filter dropped (since the nftables table was last replaced).",
			[]string{"kind"}, nil)},
	}
	reg.MustRegister(m.Healthy, m.Announced, m.Drained, m.ProbeLatency, m.Transitions, m.StateEvents, m.Serial, m.LastInstall, m.EBPF, m.handoff)
	return m
}

// handoffCollector exports the flow handoff datapath's counters, read when
// Prometheus scrapes (no series while no datapath is wired).
type handoffCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	src  Handoff
}

func (c *handoffCollector) set(h Handoff) {
	c.mu.Lock()
	c.src = h
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *handoffCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *handoffCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.src
	c.mu.Unlock()
	if src == nil {
		return
	}
	h := src.Status()
	for _, kv := range []struct {
		kind string
		v    uint64
	}{{"forwarded", h.Forwarded}, {"forward_errors", h.ForwardErrors}, {"no_peer", h.NoPeer},
		{"delivered", h.Delivered}, {"dropped", h.Dropped}, {"refused", h.Refused}, {"filter_refused", h.FilterRefused}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(kv.v), kv.kind)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// updateMetrics mirrors the whole state into the metrics; a.mu is held. It
// runs at the start and after a reload; a VIP whose state changes sets its
// own (updateVIPMetrics), and an evaluation that changes nothing only its
// probe latency.
func (a *Agent) updateMetrics() {
	m := a.cfg.Metrics
	if m == nil {
		return
	}
	for _, g := range []*prometheus.GaugeVec{m.Healthy, m.Announced, m.Drained, m.ProbeLatency} {
		g.Reset()
	}
	// A counter is never reset: drop only the series of VIPs no longer
	// installed.
	for name := range m.transitions {
		if _, ok := a.vips[name]; !ok {
			m.Transitions.DeleteLabelValues(name)
			m.StateEvents.DeleteLabelValues(name)
			delete(m.transitions, name)
		}
	}
	m.Serial.Set(float64(a.serial))
	for _, s := range a.order {
		a.updateVIPMetrics(s)
	}
}

// updateVIPMetrics sets one VIP's metrics; a.mu is held.
func (a *Agent) updateVIPMetrics(s *vipState) {
	m := a.cfg.Metrics
	if m == nil || a.vips[s.vip.Name] != s {
		return
	}
	t, name := s.tracker, s.vip.Name
	drained := a.drains.Drained(name)
	m.Healthy.WithLabelValues(name).Set(b2f(t.Healthy()))
	m.Announced.WithLabelValues(name).Set(b2f(t.Healthy() && !drained))
	m.Drained.WithLabelValues(name).Set(b2f(drained))
	m.ProbeLatency.WithLabelValues(name).Set(s.last.ProbeLatency.Seconds())
	if m.transitions == nil {
		m.transitions = map[string]int{}
	}
	// The counter rises by the changes since the last update.
	if seen, ok := m.transitions[name]; !ok || t.Transitions > seen {
		m.Transitions.WithLabelValues(name).Add(float64(t.Transitions - seen))
		m.transitions[name] = t.Transitions
	}
}
