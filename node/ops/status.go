package ops

import (
	"context"
	"errors"
	"time"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/servers"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/nodeapi"
	"github.com/lbctl/lbctl/systemd"
)

// Status reads the node's status. It works without the network and
// without the agent: it reads the releases store (nil: nothing installed)
// and systemd, and asks the agent when it runs; otherwise it evaluates
// every VIP's health itself, once.
func Status(ctx context.Context, cfg *config.Config, store *release.Store) (*nodeapi.Status, error) {
	st := &nodeapi.Status{Node: cfg.Node, VIPs: []nodeapi.VIPStatus{}, Installed: store != nil}
	if store == nil {
		return st, nil
	}
	st.Pending, _ = store.ReadIntent()
	cur, ok, err := store.Current()
	if err != nil {
		return nil, err
	}
	st.Serial, st.Installed = cur, ok
	if pin, ok, _ := store.ReadSite(); ok {
		st.Site = pin.Site
	}
	if h, _ := store.History(); len(h) > 0 {
		st.Last = &h[len(h)-1]
	}
	var vips []plan.VIP
	if ok {
		r, err := store.Load(cur)
		if err != nil {
			return nil, err
		}
		vips = r.State.VIPs
	}
	if f, err := servers.Read(cfg.StateDir); err == nil {
		st.Servers = f.Entries
	}
	var units systemd.Manager
	if m, err := systemd.NewDBus(ctx); err == nil {
		defer m.Close()
		units = m
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	drains, _ := store.ReadDrains()
	v := vipViewer{deps: setup.HealthDeps(cfg, units), units: units, drains: drains,
		agent: askAgent(ctx, cfg, st)}
	for i := range vips {
		st.VIPs = append(st.VIPs, v.status(ctx, &vips[i]))
	}
	return st, nil
}

// askAgent fills the agent's part of st and returns its view of each VIP;
// an agent that does not run gives an empty view.
func askAgent(ctx context.Context, cfg *config.Config, st *nodeapi.Status) map[string]agent.VIPStatus {
	view := map[string]agent.VIPStatus{}
	as, err := (agent.Client{Socket: cfg.Agent.Socket}).Status(ctx)
	switch {
	case err == nil:
		st.Agent, st.Probe, st.Handoff, st.AgentSerial = "running", as.Probe, as.Handoff, as.Serial
		for _, v := range as.VIPs {
			view[v.Name] = v
		}
	case errors.Is(err, agent.ErrNotRunning):
		st.Agent = "not running (health evaluated once by this command; nothing is announced by it)"
	default:
		st.Agent = "error: " + err.Error()
	}
	return view
}

// vipViewer reads one VIP's status: its unit from systemd (units may be
// nil), its health from the agent's view or, for a VIP the agent does not
// report, from one evaluation.
type vipViewer struct {
	deps   health.Deps
	units  systemd.Manager
	drains health.Drains
	agent  map[string]agent.VIPStatus
}

func (w vipViewer) status(ctx context.Context, v *plan.VIP) nodeapi.VIPStatus {
	vs := nodeapi.VIPStatus{Name: v.Name, Drained: w.drains.Drained(v.Name), Unit: "unknown"}
	for _, a := range v.Addresses {
		vs.Addresses = append(vs.Addresses, a.String())
	}
	if w.units != nil {
		if us, err := w.units.State(ctx, systemd.UnitName(v.Name)); err == nil {
			vs.Unit, vs.MainPID = us.ActiveState+"/"+us.SubState, us.MainPID
		}
	}
	if av, ok := w.agent[v.Name]; ok {
		vs.Healthy, vs.Announced, vs.Reasons = av.Healthy, av.Announced, av.Reasons
	} else {
		hv := v.Health()
		r := health.Evaluate(ctx, &hv, w.deps, nil)
		vs.Healthy, vs.Reasons = r.OK, r.Reasons
	}
	return vs
}
