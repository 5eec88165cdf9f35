package health

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/lbctl/lbctl/health/probe"
)

// The specification of a VIP's health: what the installer derives from the
// model (node/target), records for the agent (node/release) and the agent
// evaluates. It lives here, not in the planner, so that health imports no
// node package.

// VIP is what health needs to know of a VIP: its name, its addresses (the
// host routes announced while it is healthy), its probes and its backends.
type VIP struct {
	Name      string       `json:"name"`
	Addresses []netip.Addr `json:"addresses"`
	// Probes are the active probes that must pass for the VIP to be
	// healthy, sorted by address.
	Probes []Probe `json:"probes,omitempty"`
	// Backends are the HAProxy backends of the VIP with the number of
	// servers that must be up.
	Backends []Backend `json:"backends,omitempty"`
	// Events says that the VIP's HAProxy sends its server and backend
	// state changes to the agent (health/haproxy.Events): the agent then
	// reads a stable VIP's backends only on such an event and every probe
	// interval, not at every evaluation.
	Events bool `json:"events,omitempty"`
}

// Probe kinds.
const (
	ProbeTCP  = "tcp"
	ProbeHTTP = "http"
	ProbeTLS  = "tls"
)

// Probe is one active probe of a VIP listener.
type Probe struct {
	Kind string         `json:"kind"`
	Addr netip.AddrPort `json:"addr"`
	// TLS means the probe speaks TLS (https or a TLS handshake) with SNI
	// Host.
	TLS bool `json:"tls,omitempty"`
	// Host is the Host header and SNI name.
	Host string `json:"host,omitempty"`
	Path string `json:"path,omitempty"`
	// RedirectOnly means the listener answers with a redirect itself.
	RedirectOnly bool `json:"redirect_only,omitempty"`
}

// Checker returns the health/probe checker of a probe.
func (p Probe) Checker() (probe.Checker, error) {
	switch p.Kind {
	case ProbeTCP:
		return &probe.TCP{Addr: p.Addr}, nil
	case ProbeTLS:
		return &probe.TLS{Addr: p.Addr, ServerName: p.Host}, nil
	case ProbeHTTP:
		return &probe.HTTP{Addr: p.Addr, Host: p.Host, Path: p.Path, TLS: p.TLS, RedirectOnly: p.RedirectOnly}, nil
	}
	return nil, fmt.Errorf("unknown probe kind %q", p.Kind)
}

// Backend is an HAProxy backend of a VIP and how many of its servers must
// be up.
type Backend struct {
	Name  string `json:"name"`
	MinUp int    `json:"min_up"`
	// Service is the model's name of the service the backend serves (the
	// traffic metrics' service label).
	Service string `json:"service,omitempty"`
}

// Announceable is the set of VIPs this node may announce, written by the
// install's announce steps (node/release) and read by the agent, which
// announces those of them that are healthy and not drained.
type Announceable struct {
	VIPs []VIP `json:"vips"`
}

// Drains is the operator's drain state; it survives agent restarts and
// reinstalls. A drained VIP stays healthy but is not announced.
type Drains struct {
	All  bool     `json:"all"`
	VIPs []string `json:"vips"`
	// GracefulShutdown marks every announced route with the
	// GRACEFUL_SHUTDOWN community (RFC 8326): lbctl drain --all sets it
	// before it withdraws them, undrain --all clears it.
	GracefulShutdown bool `json:"graceful_shutdown,omitempty"`
}

// Drained reports whether the VIP is drained.
func (d Drains) Drained(vip string) bool { return d.All || slices.Contains(d.VIPs, vip) }
