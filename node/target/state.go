// Package target computes what one node should run for a release: the pure
// step between a bundle's resolved model and the planner. For every VIP it
// renders the HAProxy files and derives the probes and backends the health
// checks watch; for the node it renders bird.conf and the firewall.
package target

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/render/nft"
	"github.com/lbctl/lbctl/node/plan"
)

// Options are the node-side paths and tunables the renderers need.
type Options struct {
	HAProxy haproxy.Options
	Bird    bird.Options
}

// State renders the node state of release serial for node. It is pure.
func State(site *model.Site, node *model.Node, serial uint64, opts Options) (*plan.State, error) {
	st := &plan.State{Serial: serial, Interface: node.VIPInterface}
	var errs []error
	if opts.HAProxy.SharedChecks == nil {
		opts.HAProxy.SharedChecks = haproxy.SharedChecks(site)
	}
	for i := range site.VIPs {
		v := &site.VIPs[i]
		pv, err := vip(site, v, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("vip %s: %w", v.Name, err))
			continue
		}
		st.VIPs = append(st.VIPs, *pv)
	}
	slices.SortFunc(st.VIPs, func(a, b plan.VIP) int { return strings.Compare(a.Name, b.Name) })
	fw, err := nft.Firewall(site, node)
	if err != nil {
		errs = append(errs, fmt.Errorf("firewall: %w", err))
	}
	st.Firewall = fw
	conf, err := bird.Config(site, node, opts.Bird)
	if err != nil {
		errs = append(errs, fmt.Errorf("bird.conf: %w", err))
	}
	st.BirdConf = conf
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return st, nil
}

func vip(site *model.Site, v *model.VIP, opts Options) (*plan.VIP, error) {
	files, err := haproxy.Render(site, v, opts.HAProxy)
	if err != nil {
		return nil, err
	}
	backends, err := haproxy.Backends(site, v)
	if err != nil {
		return nil, err
	}
	pv := &plan.VIP{Name: v.Name, Transparent: v.Transparent, Probes: Probes(site, v)}
	for _, a := range v.Addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		pv.Addresses = append(pv.Addresses, ip)
	}
	for _, f := range files {
		pv.Files = append(pv.Files, plan.File{Path: f.Name, Data: f.Data})
	}
	slices.SortFunc(pv.Files, func(a, b plan.File) int { return strings.Compare(a.Path, b.Path) })
	for _, b := range backends {
		pv.Backends = append(pv.Backends, plan.Backend{Name: b.Name, MinUp: b.MinUp, Service: b.Service})
	}
	return pv, nil
}
