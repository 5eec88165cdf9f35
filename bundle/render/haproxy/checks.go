package haproxy

import (
	"fmt"
	"net/netip"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

// Shared health checks. With one HAProxy per VIP, a server used by N VIPs
// gets N checks per interval from every node. SharedChecks counts those
// VIPs, and a server checked by N > 1 VIPs is checked by each of them
// every N intervals instead (`inter`), so that the checks reaching it stay
// one per interval per node whatever N is; `spread-checks` staggers the
// VIPs' checks. The price is that one VIP notices a dead shared server
// later (up to N intervals, then `fastinter` at the plain interval for the
// remaining falls); `observe layer4` with `on-error fastinter` shortens
// that for VIPs that carry traffic: a failed connection to the server
// switches that VIP to the plain interval at once. docs/BENCHMARKS.md
// measures both sides.

// SharedChecks maps every health-checked server of the site (its address
// and the port its checks go to) to the number of VIPs that check it. It
// is pure; compute it once per site and pass it in Options.SharedChecks.
func SharedChecks(site *model.Site) map[netip.AddrPort]int {
	vips := map[netip.AddrPort]map[string]bool{}
	for i := range site.Services {
		s := &site.Services[i]
		if s.VIP == "" {
			continue
		}
		for k := range checkedServers(s) {
			if vips[k] == nil {
				vips[k] = map[string]bool{}
			}
			vips[k][s.VIP] = true
		}
	}
	out := make(map[netip.AddrPort]int, len(vips))
	for k, v := range vips {
		out[k] = len(v)
	}
	return out
}

// checkedServers is the set of server address and check port pairs a
// service's backends check.
func checkedServers(ms *model.Service) map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	be := ms.Backend
	if be.Check.Type == model.CheckNone || be.Check.Type == "" {
		return out
	}
	s := &service{Service: ms}
	for _, l := range ms.Listeners {
		if l.Action != model.ActionServe {
			continue
		}
		for _, srv := range be.Servers {
			a := srv.Address
			if !a.IsValid() {
				continue
			}
			out[netip.AddrPortFrom(a, uint16(checkPort(be, backendPort(s, l))))] = true
		}
	}
	return out
}

// checkPort is the port a backend on port p sends its checks to: a
// protocol check goes to the service's main port.
func checkPort(be model.Backend, p int) int {
	if be.Check.Type != model.CheckTCP && be.Port > 0 && be.Port != p {
		return be.Port
	}
	return p
}

// sharedCheck returns the server-line options of a server whose checks
// are shared by other VIPs, or "".
func (r *vipRender) sharedCheck(be model.Backend, port int, a netip.Addr) string {
	n := r.opts.SharedChecks[netip.AddrPortFrom(a, uint16(checkPort(be, port)))]
	c := be.Check
	if n < 2 || c.Type == model.CheckNone || c.Type == "" || c.IntervalMS <= 0 {
		return ""
	}
	return fmt.Sprintf(" inter %s fastinter %s observe layer4 error-limit 1 on-error fastinter",
		text.Duration(c.IntervalMS*n), text.Duration(c.IntervalMS))
}

// sharesChecks reports whether any server of the VIP is checked by other
// VIPs too (its global section then spreads checks).
func (r *vipRender) sharesChecks() bool {
	for _, b := range r.backends {
		for _, srv := range b.svc.Backend.Servers {
			if a := srv.Address; a.IsValid() && r.sharedCheck(b.svc.Backend, b.port, a) != "" {
				return true
			}
		}
	}
	return false
}
