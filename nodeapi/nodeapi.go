// Package nodeapi is the contract of `lbctl status --json`: the Status a
// node reports, which `lbctl push` reads over ssh to decide whether a node
// is healthy, and the records it embeds (the install intent and log entry,
// the flow handoff state, the servers an operator took out). The node
// packages that produce these records alias the types declared here.
//
// It holds types only: it builds for any OS, reads nothing and links no
// kernel library, so the build side (bundle/) may import it.
package nodeapi

import "time"

// Status is what `lbctl status --json` prints.
type Status struct {
	Node string `json:"node"`
	// Site is the site of the releases the node runs (its site pin,
	// written by its first install); empty before that.
	Site string `json:"site,omitempty"`
	// Installed is false when the node has no state at all.
	Installed bool    `json:"installed"`
	Serial    uint64  `json:"serial"`
	Pending   *Intent `json:"interrupted_install,omitempty"`
	Agent     string  `json:"agent"`
	// AgentSerial is the release the running agent has taken up (its
	// health view is of that release); 0 when the agent does not run.
	AgentSerial uint64         `json:"agent_serial,omitempty"`
	Probe       string         `json:"probe,omitempty"`
	Handoff     *HandoffStatus `json:"handoff,omitempty"`
	VIPs        []VIPStatus    `json:"vips"`
	Last        *LogEntry      `json:"last_install,omitempty"`
	// Servers an operator took out (lbctl server drain|disable).
	Servers []ServerEntry `json:"servers_out,omitempty"`
}

// Unhealthy lists the VIPs that are not healthy, each with its reasons.
func (s *Status) Unhealthy() []VIPStatus {
	var out []VIPStatus
	for _, v := range s.VIPs {
		if !v.Healthy {
			out = append(out, v)
		}
	}
	return out
}

// VIPStatus is one VIP in the status.
type VIPStatus struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	Unit      string   `json:"unit"`
	MainPID   uint32   `json:"main_pid"`
	Healthy   bool     `json:"healthy"`
	Announced bool     `json:"announced"`
	Drained   bool     `json:"drained"`
	Reasons   []string `json:"reasons,omitempty"`
}

// Intent records an install that is changing the node (intent.json in the
// state directory); one left behind means the install was interrupted.
type Intent struct {
	Op      string    `json:"op"` // install, rollback
	From    uint64    `json:"from"`
	HasFrom bool      `json:"has_from"`
	To      uint64    `json:"to"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// LogEntry is one line of the install log.
type LogEntry struct {
	Time   time.Time `json:"time"`
	Op     string    `json:"op"` // install, rollback, recover, repair
	From   uint64    `json:"from,omitempty"`
	To     uint64    `json:"to"`
	Result string    `json:"result"` // committed, rolled-back, no-op, failed; repair: repaired, incomplete
	Error  string    `json:"error,omitempty"`
	Millis int64     `json:"ms"`
	// Overrides lists the anti-replay checks the operator overrode
	// (--allow-downgrade, --allow-serial-jump) and why they applied.
	Overrides []string `json:"overrides,omitempty"`
}

// ServerEntry is a backend server an operator took out of service.
type ServerEntry struct {
	Server string `json:"server"`
	// VIP limits the entry to one VIP; empty means every VIP using the
	// server.
	VIP   string    `json:"vip,omitempty"`
	State string    `json:"state"`
	Since time.Time `json:"since"`
}

// Where says where the entry applies: "every VIP" or "VIP <name>".
func (e ServerEntry) Where() string {
	if e.VIP == "" {
		return "every VIP"
	}
	return "VIP " + e.VIP
}

// HandoffStatus is the flow handoff datapath's state as the agent reports
// it.
type HandoffStatus struct {
	// State is "active", "off (...)" or "unavailable (...)" with the reason.
	State    string   `json:"state"`
	Attached []string `json:"attached,omitempty"`
	Peers    []string `json:"peers,omitempty"`
	// Pins says where the programs are pinned ("pinned in DIR": they keep
	// forwarding while the agent restarts) or why not ("not pinned
	// (...)"); empty when the datapath is unavailable.
	Pins string `json:"pins,omitempty"`
	// Counters since the datapath was loaded (pinned: since the pins were
	// made, across agent restarts); FilterRefused counts encapsulated
	// packets the packet filter dropped because they did not come from a
	// peer (since the table was last replaced).
	Forwarded     uint64 `json:"forwarded"`
	ForwardErrors uint64 `json:"forward_errors"`
	NoPeer        uint64 `json:"no_peer"`
	Delivered     uint64 `json:"delivered"`
	Dropped       uint64 `json:"dropped"`
	Refused       uint64 `json:"refused"`
	FilterRefused uint64 `json:"filter_refused"`
}
