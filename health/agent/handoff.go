package agent

import (
	"context"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/nodeapi"
)

// Handoff is the node's flow handoff datapath as the agent drives it
// (node/setup wires bpf/handoff): on every reload the agent hands it the
// committed release's firewall, whose Handoff names the peers and the
// transparent backends and whose Accept4 the VIP ports.
type Handoff interface {
	// Apply makes forwarding match fw; a nil fw.Handoff turns it off.
	Apply(fw model.Firewall) error
	// Status reads the datapath's state and counters.
	Status() HandoffStatus
}

// HandoffStatus is the flow handoff part of the agent's status (declared
// in nodeapi: `lbctl status --json` carries it).
type HandoffStatus = nodeapi.HandoffStatus

// handoffLoop re-applies the committed release to the datapath every
// handoffRefresh, apart from the VIPs' evaluations so that a failover never
// waits for it: VIP ports kept for a drain expire, and a commit the agent
// was not told about is picked up. An install tells it (POST /committed)
// right after it commits.
func (a *Agent) handoffLoop(ctx context.Context) {
	t := time.NewTicker(handoffRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.applyHandoff()
		}
	}
}

// committed returns the committed release's serial; ok is false when
// there is none (or it cannot be read).
func (a *Agent) committed() (serial uint64, ok bool) {
	serial, ok, err := a.cfg.Store.Current()
	return serial, ok && err == nil
}

// takeCommitted makes serial, the committed release, the agent's: an
// install reloads the agent (its announce step) before it commits, so
// without this the agent would report the previous serial until the next
// reload.
func (a *Agent) takeCommitted(serial uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.serial = serial
	if m := a.cfg.Metrics; m != nil {
		m.Serial.Set(float64(serial))
	}
}

// handoffRefresh is how often the agent re-applies the datapath without
// being told.
const handoffRefresh = 10 * time.Second

// applyHandoff hands the committed release's firewall to the datapath (the
// datapath makes applying the same release again change nothing). It runs
// on every reload, when an install has committed (POST /committed: an
// install asks the agent to reload before it commits) and every
// handoffRefresh.
func (a *Agent) applyHandoff() {
	if serial, ok := a.committed(); ok {
		a.handoffTo(serial)
	}
}

// handoffTo hands release serial's firewall to the datapath. The firewall
// is read from the store only when serial is not the release handed over
// last: the refresh every handoffRefresh re-applies the same one.
func (a *Agent) handoffTo(serial uint64) {
	if a.cfg.Handoff == nil {
		return
	}
	a.handoffMu.Lock()
	defer a.handoffMu.Unlock()
	if a.handoffFW == nil || a.handoffSerial != serial {
		fw, err := a.cfg.Store.Firewall(serial)
		if err != nil {
			a.log.Error("flow handoff: reading the committed release", "serial", serial, "err", err)
			return
		}
		a.handoffSerial, a.handoffFW = serial, &fw
	}
	if err := a.cfg.Handoff.Apply(*a.handoffFW); err != nil {
		a.log.Error("flow handoff", "err", err)
	}
}
