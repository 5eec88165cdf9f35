package intent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
)

// crossCheck runs the checks that span services and groups the services
// into VIPs: every distinct address set is one VIP.
func (rs *resolver) crossCheck(services []model.Service) []model.VIP {
	byName := make(map[string]*Service, len(rs.tree.Services))
	for _, s := range rs.tree.Services {
		byName[s.Name] = s
	}
	rs.checkNames(services, byName)

	// Address sets: services sharing an address share the whole set.
	type set struct {
		key   string
		first *model.Service
	}
	owner := map[netip.Addr]set{} // address -> its set
	vips := map[string]*model.VIP{}
	reported := map[[2]string]bool{}
	for i := range services {
		ms := &services[i]
		if len(ms.Addresses) == 0 {
			continue
		}
		key := joinAddrs(ms.Addresses, ",")
		ok := true
		for _, a := range ms.Addresses {
			o, seen := owner[a]
			if !seen {
				continue
			}
			if o.key != key {
				ok = false
				pair := [2]string{o.first.Name, ms.Name}
				if !reported[pair] {
					reported[pair] = true
					s := byName[ms.Name]
					rs.errs.Add(s.at("fqdn"), "addresses of %s (%s) overlap those of service %s (%s, %s): services sharing an address must share the whole address set",
						ms.FQDN, joinAddrs(ms.Addresses, " "), o.first.Name, joinAddrs(o.first.Addresses, " "), byName[o.first.Name].at("fqdn"))
				}
			}
		}
		if !ok {
			continue
		}
		for _, a := range ms.Addresses {
			if _, seen := owner[a]; !seen {
				owner[a] = set{key: key, first: ms}
			}
		}
		v, ok := vips[key]
		if !ok {
			v = &model.VIP{Name: vipName(ms.Addresses), Addresses: ms.Addresses}
			vips[key] = v
		}
		v.Services = append(v.Services, ms.Name)
		v.Transparent = v.Transparent || ms.Transparent
		ms.VIP = v.Name
	}

	out := make([]model.VIP, 0, len(vips))
	for _, v := range vips {
		v.Ports = rs.ports(v, services, byName)
		v.Threads = vipThreads(v)
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b model.VIP) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// vipName derives a VIP's name from its key address: the first IPv4
// address, else the first IPv6 address, with ':' replaced by '-'.
func vipName(addrs []netip.Addr) string {
	key := addrs[0].String() // sorted IPv4 first
	return strings.ReplaceAll(key, ":", "-")
}

// joinAddrs is the text of addrs joined by sep.
func joinAddrs(addrs []netip.Addr, sep string) string {
	var b strings.Builder
	for i, a := range addrs {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// checkNames reports host names (FQDNs and aliases) used by two services.
func (rs *resolver) checkNames(services []model.Service, byName map[string]*Service) {
	// use is a host name's use: a service and the path of the name in it
	// (positions are looked up only for errors).
	type use struct {
		s    *Service
		path string
	}
	seen := make(map[string]use, len(services))
	for _, ms := range services {
		s := byName[ms.Name]
		for i := -1; i < len(s.Aliases); i++ {
			name, path := ms.FQDN, "fqdn"
			if i >= 0 {
				name, path = canonicalName(s.Aliases[i]), fmt.Sprintf("aliases.%d", i)
			}
			if name == "" {
				continue
			}
			if prev, ok := seen[name]; ok {
				if prev.s != s {
					rs.errs.Add(s.at(path), "host name %s is also used by service %s (%s)", name, prev.s.Name, prev.s.at(prev.path))
				}
				continue
			}
			seen[name] = use{s, path}
		}
	}
}

// ports computes the ports of a VIP and checks that the services on each
// port can share it: tcp services cannot share a port; http services can
// (routed by Host header and SNI) but must agree on TLS and address
// families.
func (rs *resolver) ports(v *model.VIP, services []model.Service, byName map[string]*Service) []model.Port {
	type bound struct {
		svc *model.Service
		l   model.Listener
		idx int
	}
	byPort := map[int][]bound{}
	for _, name := range v.Services {
		i, _ := slices.BinarySearchFunc(services, name, func(s model.Service, n string) int { return strings.Compare(s.Name, n) })
		ms := &services[i]
		for j, l := range ms.Listeners {
			byPort[l.Port] = append(byPort[l.Port], bound{ms, l, j})
		}
	}
	var out []model.Port
	for port, bs := range byPort {
		first := bs[0]
		p := model.Port{Port: port, Mode: first.svc.Mode, TLS: first.l.TLS}
		for _, b := range bs {
			p.Services = append(p.Services, b.svc.Name)
			if b.svc == first.svc {
				continue
			}
			if b.svc.Mode == model.ModeHTTP && first.svc.Mode == model.ModeHTTP && b.l.TLS == first.l.TLS && b.l.IPv4 == first.l.IPv4 && b.l.IPv6 == first.l.IPv6 {
				continue // the common case: http services sharing a port
			}
			where := byName[b.svc.Name].listenerPos(port)
			other := fmt.Sprintf("service %s (%s)", first.svc.Name, byName[first.svc.Name].listenerPos(port))
			switch {
			case b.svc.Mode == model.ModeTCP && first.svc.Mode == model.ModeTCP:
				rs.errs.Add(where, "port %d on VIP %s is also used by tcp %s: tcp services cannot share a VIP port", port, v.Name, other)
			case b.svc.Mode != first.svc.Mode:
				rs.errs.Add(where, "port %d on VIP %s: mode %s differs from mode %s of %s", port, v.Name, b.svc.Mode, first.svc.Mode, other)
			case b.l.TLS != first.l.TLS:
				rs.errs.Add(where, "port %d on VIP %s: TLS termination is %s here but %s in %s: services sharing a port must agree on TLS", port, v.Name, onOff(b.l.TLS), onOff(first.l.TLS), other)
			case b.l.IPv4 != first.l.IPv4 || b.l.IPv6 != first.l.IPv6:
				rs.errs.Add(where, "port %d on VIP %s: listens on %s here but on %s in %s: services sharing a port must agree on address families", port, v.Name, families(b.l), families(first.l), other)
			}
		}
		slices.Sort(p.Services)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b model.Port) int { return a.Port - b.Port })
	return out
}

// listenerPos is where a service's listener on port is declared (or
// inferred from).
func (s *Service) listenerPos(port int) Pos {
	for i, l := range s.Listeners {
		if l.Port == port {
			return s.at(fmt.Sprintf("listeners.%d", i))
		}
	}
	if p := s.at("listeners"); s.src.get("listeners") != nil {
		return p
	}
	return s.at("fqdn")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func families(l model.Listener) string {
	var f []string
	if l.IPv4 {
		f = append(f, "ipv4")
	}
	if l.IPv6 {
		f = append(f, "ipv6")
	}
	return strings.Join(f, "+")
}

// nodes converts and checks the node profiles.
func (rs *resolver) nodes() []model.Node {
	out := []model.Node{}
	for _, np := range rs.tree.Nodes {
		n := model.Node{
			Hostname:        np.Hostname,
			ASN:             np.ASN,
			BFD:             np.BFD != nil && *np.BFD,
			VIPInterface:    np.VIPInterface,
			Source:          np.Source,
			RouteReflectors: []model.Peer{},
			Addresses:       []netip.Addr{},
		}
		at := func(p string) Pos {
			s := Service{src: np.src}
			return s.at(p)
		}
		if len(np.Hostname) > 253 || !validLabels(np.Hostname) {
			rs.errs.Add(at("hostname"), "hostname %s is not a valid host name", short(np.Hostname))
		}
		if a, err := netip.ParseAddr(np.RouterID); np.RouterID != "" && (err != nil || !a.Is4()) {
			rs.errs.Add(at("router_id"), "router_id %s is not an IPv4 address", short(np.RouterID))
		} else {
			n.RouterID = a
		}
		if n.VIPInterface == "" {
			n.VIPInterface = "lo"
		}
		var addrs []netip.Addr
		for i, s := range np.Addresses {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				rs.errs.Add(at(fmt.Sprintf("addresses.%d", i)), "address %s is not an IP address", short(s))
				continue
			}
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		n.Addresses = append(n.Addresses, slices.Compact(addrs)...)
		seen := map[string]bool{}
		for i, p := range np.RouteReflectors {
			a, err := netip.ParseAddr(p.Address)
			if err != nil || a.Zone() != "" {
				rs.errs.Add(at(fmt.Sprintf("route_reflectors.%d.address", i)), "route reflector address %s is not an IP address", short(p.Address))
				continue
			}
			if seen[p.Name] {
				rs.errs.Add(at(fmt.Sprintf("route_reflectors.%d.name", i)), "route reflector %s listed twice", p.Name)
				continue
			}
			seen[p.Name] = true
			n.RouteReflectors = append(n.RouteReflectors, model.Peer{Name: p.Name, Address: a, ASN: p.ASN})
		}
		slices.SortFunc(n.RouteReflectors, func(a, b model.Peer) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, n)
	}
	return out
}
