package agent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the agent's Prometheus metrics. Every VIP label comes from
// the installed intents: a VIP that is not in them has no series.
type Metrics struct {
	Healthy      *prometheus.GaugeVec
	Announced    *prometheus.GaugeVec
	Drained      *prometheus.GaugeVec
	ProbeLatency *prometheus.GaugeVec
	Transitions  *prometheus.GaugeVec
	Serial       prometheus.Gauge
	LastInstall  prometheus.Gauge
	EBPF         prometheus.Gauge
	// Handoff counts flow handoff packets by kind (forwarded, delivered,
	// dropped, refused, forward_errors, no_peer, filter_refused).
	Handoff *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	vip := []string{"vip"}
	m := &Metrics{
		Healthy:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_healthy", Help: "1 if the VIP passes its health checks on this node."}, vip),
		Announced:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_announced", Help: "1 if this node asks BIRD to announce the VIP."}, vip),
		Drained:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_drained", Help: "1 if an operator drained the VIP on this node."}, vip),
		ProbeLatency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_probe_latency_seconds", Help: "Duration of the slowest active probe of the VIP's last evaluation."}, vip),
		Transitions:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_vip_health_transitions", Help: "Health state changes of the VIP since the agent started."}, vip),
		Serial:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "lbctl_bundle_serial", Help: "Serial of the announceable release."}),
		LastInstall:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "lbctl_last_install_success", Help: "1 if the last install committed, 0 if it was rolled back or failed."}),
		EBPF:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "lbctl_ebpf_probe", Help: "1 if the eBPF socket probe is in use, 0 for the sock_diag fallback."}),
		Handoff:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lbctl_handoff_packets", Help: "Flow handoff packets since the agent started, by kind: forwarded to a peer, delivered or dropped after a peer forwarded them, refused, forward_errors, no_peer; filter_refused counts encapsulated packets from non-peers the packet filter dropped."}, []string{"kind"}),
	}
	reg.MustRegister(m.Healthy, m.Announced, m.Drained, m.ProbeLatency, m.Transitions, m.Serial, m.LastInstall, m.EBPF, m.Handoff)
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// updateMetrics mirrors the state into the metrics; a.mu is held.
func (a *Agent) updateMetrics() {
	m := a.cfg.Metrics
	if m == nil {
		return
	}
	for _, g := range []*prometheus.GaugeVec{m.Healthy, m.Announced, m.Drained, m.ProbeLatency, m.Transitions} {
		g.Reset()
	}
	m.Serial.Set(float64(a.serial))
	if a.cfg.Handoff != nil {
		h := a.cfg.Handoff.Status()
		for kind, v := range map[string]uint64{"forwarded": h.Forwarded, "forward_errors": h.ForwardErrors, "no_peer": h.NoPeer,
			"delivered": h.Delivered, "dropped": h.Dropped, "refused": h.Refused, "filter_refused": h.FilterRefused} {
			m.Handoff.WithLabelValues(kind).Set(float64(v))
		}
	}
	for _, v := range a.vips {
		t := a.trackers[v.Name]
		drained := a.drains.Drained(v.Name)
		m.Healthy.WithLabelValues(v.Name).Set(b2f(t.Healthy()))
		m.Announced.WithLabelValues(v.Name).Set(b2f(t.Healthy() && !drained))
		m.Drained.WithLabelValues(v.Name).Set(b2f(drained))
		m.ProbeLatency.WithLabelValues(v.Name).Set(a.last[v.Name].ProbeLatency.Seconds())
		m.Transitions.WithLabelValues(v.Name).Set(float64(t.Transitions))
	}
}
