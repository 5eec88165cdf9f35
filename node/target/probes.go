package target

import (
	"net/netip"
	"slices"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health"
)

// Probes derives the active probes of a VIP from its services: one per VIP
// address and port. On a port that several http services share, the first
// service by name that serves on it names the Host header and SNI.
func Probes(site *model.Site, v *model.VIP) []health.Probe {
	var out []health.Probe
	for _, p := range v.Ports {
		var svc *model.Service
		var l *model.Listener
		redirectOnly := true
		for _, name := range p.Services {
			s := site.Service(name)
			if s == nil {
				continue
			}
			for i := range s.Listeners {
				if s.Listeners[i].Port != p.Port {
					continue
				}
				if s.Listeners[i].Action != model.ActionRedirectHTTPS {
					redirectOnly = false
				}
				if svc == nil || (l.Action == model.ActionRedirectHTTPS && s.Listeners[i].Action != model.ActionRedirectHTTPS) {
					svc, l = s, &s.Listeners[i]
				}
			}
		}
		if svc == nil {
			continue
		}
		for _, a := range v.Addresses {
			if !a.IsValid() || (a.Is4() && !l.IPv4) || (a.Is6() && !l.IPv6) {
				continue
			}
			pr := health.Probe{Addr: netip.AddrPortFrom(a, uint16(p.Port)), Host: svc.FQDN}
			switch {
			case p.Mode == model.ModeHTTP:
				pr.Kind, pr.TLS, pr.RedirectOnly = health.ProbeHTTP, p.TLS, redirectOnly && !p.TLS
				pr.Path = "/"
			case p.TLS:
				pr.Kind = health.ProbeTLS
			default:
				pr.Kind, pr.Host = health.ProbeTCP, ""
			}
			out = append(out, pr)
		}
	}
	slices.SortFunc(out, func(x, y health.Probe) int { return x.Addr.Compare(y.Addr) })
	return out
}
