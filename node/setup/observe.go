package setup

import (
	"fmt"
	"net/http"
	"time"

	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/health/traffic"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/servers"
)

// vipNames lists the VIPs the agent watches.
func vipNames(a *agent.Agent) []string {
	// VIPs, not Status: the reconciler asks four times a second, and
	// Status builds every VIP's status and reads the flow handoff counters
	// (eBPF maps and an nftables query).
	var out []string
	for _, v := range a.VIPs() {
		out = append(out, v.Name)
	}
	return out
}

// trafficReader reads the HAProxy of every VIP the agent watches, with
// the service of each backend from the announceable set.
func trafficReader(cfg *config.Config, a *agent.Agent) *traffic.Reader {
	socket := AdminSocket(cfg)
	return &traffic.Reader{Targets: func() []traffic.Target {
		var ts []traffic.Target
		for _, v := range a.VIPs() {
			t := traffic.Target{VIP: v.Name, Socket: socket(v.Name), Services: map[string]string{}}
			for _, b := range v.Backends {
				t.Services[b.Name] = b.Service
			}
			ts = append(ts, t)
		}
		return ts
	}}
}

// statusPage is the node's status page, allowed from loopback and
// agent.status_allow.
func statusPage(cfg *config.Config, store *release.Store, a *agent.Agent, tr *traffic.Reader) http.Handler {
	p := &agent.Page{Agent: a, Node: cfg.Node, Traffic: tr,
		Serial: func() uint64 {
			s, _, _ := store.Current()
			return s
		},
		LastInstall: func() *release.LogEntry {
			h, err := store.History()
			if err != nil || len(h) == 0 {
				return nil
			}
			return &h[len(h)-1]
		},
		ServersOut: func() []string {
			f, err := servers.Read(cfg.StateDir)
			if err != nil {
				return []string{err.Error()}
			}
			var out []string
			for _, e := range f.Entries {
				out = append(out, fmt.Sprintf("%s: %s in %s since %s", e.Server, e.State, e.Where(), e.Since.Format(time.RFC3339)))
			}
			return out
		}}
	return agent.AllowFrom(cfg.Agent.StatusAllow, p)
}
