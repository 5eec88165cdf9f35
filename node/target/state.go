// Package target turns the desired state of a node (bundle/render.NodeState,
// the one computation of it) into the state of one release the planner
// takes: the release serial, and for every VIP the probes and backends the
// health checks watch.
package target

import (
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/plan"
)

// Options are the node-side paths and tunables the renderers need.
type Options = render.Options

// State is the node state of release serial for node. It is pure.
func State(site *model.Site, node *model.Node, serial uint64, opts Options) (*plan.State, error) {
	ds, err := render.NodeState(site, node, opts)
	if err != nil {
		return nil, err
	}
	st := &plan.State{Serial: serial, Interface: ds.Interface, Firewall: ds.Firewall, BirdConf: ds.BirdConf}
	for _, v := range ds.VIPs {
		pv := plan.VIP{Name: v.Name, Addresses: v.Addresses, Transparent: v.Transparent, Probes: Probes(site, site.VIP(v.Name))}
		for _, f := range v.Files {
			pv.Files = append(pv.Files, plan.File{Path: f.Name, Data: f.Data})
		}
		for _, b := range v.Backends {
			pv.Backends = append(pv.Backends, health.Backend{Name: b.Name, MinUp: b.MinUp, Service: b.Service})
		}
		st.VIPs = append(st.VIPs, pv)
	}
	return st, nil
}
