package render

import (
	"slices"

	"github.com/lbctl/lbctl/bundle/model"
)

// BackendPorts returns the ports on s's backend servers that its serving
// listeners connect to, sorted: what Icinga 2 checks on every server of s
// (render/icinga2), and, with the protocol-check port, what the backend
// firewall admits the LB nodes to (render/backendfw). Both take it from
// here, so that the monitoring hosts are admitted to exactly the ports they
// check.
func BackendPorts(s *model.Service) []int {
	var ps []int
	for _, l := range s.Listeners {
		if l.Action != model.ActionServe {
			continue
		}
		p := l.BackendPort
		if p == 0 {
			p = s.Backend.Port
		}
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return slices.Compact(ps)
}
