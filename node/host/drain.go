package host

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/lbctl/lbctl/bpf"
	"github.com/lbctl/lbctl/node/plan"
)

// DrainLocals are the VIP address:ports of the named VIPs of st (all VIPs
// when names is empty), by VIP name: what a drain watches.
func DrainLocals(st *plan.State, names []string) map[string][]netip.AddrPort {
	locals := map[string][]netip.AddrPort{}
	if st == nil {
		return locals
	}
	pairs := append(slices.Clone(st.Firewall.Accept4), st.Firewall.Accept6...)
	for _, v := range st.VIPs {
		if len(names) > 0 && !slices.Contains(names, v.Name) {
			continue
		}
		for _, p := range pairs {
			if p.Addr.IsValid() && slices.Contains(v.Addresses, p.Addr) {
				locals[v.Name] = append(locals[v.Name], netip.AddrPortFrom(p.Addr, uint16(p.Port)))
			}
		}
	}
	return locals
}

// WaitDrained waits until no connection to locals is open or wait passes
// (or ctx ends), polling sock_diag every 200 ms, and returns the VIPs that
// still have open connections with their number. Nothing is closed: with
// flow handoff a withdrawn node keeps receiving its connections' packets
// from the peers the router now sends them to.
func WaitDrained(ctx context.Context, locals map[string][]netip.AddrPort, wait time.Duration) (map[string]int, error) {
	var all []netip.AddrPort
	for _, l := range locals {
		all = append(all, l...)
	}
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		open, err := bpf.OpenConnections(all)
		if err != nil {
			return nil, fmt.Errorf("counting open connections: %w", err)
		}
		left := map[string]int{}
		for name, ls := range locals {
			for _, l := range ls {
				if open[l] > 0 {
					left[name] += open[l]
				}
			}
		}
		if len(left) == 0 || !time.Now().Before(deadline) {
			return left, nil
		}
		select {
		case <-ctx.Done():
			return left, ctx.Err()
		case <-tick.C:
		}
	}
}
