package intent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

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
	for _, v := range vips {
		v.BGP = rs.vipBGP(v, services, byName)
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

// vipBGP is rule I28: a VIP's routes carry the communities of all its
// services; the services that name a primary node agree on it, and it is
// a node of the site.
func (rs *resolver) vipBGP(v *model.VIP, services []model.Service, byName map[string]*Service) model.RouteAttrs {
	var out model.RouteAttrs
	var first *model.Service
	for i := range services {
		ms := &services[i]
		if ms.VIP != v.Name {
			continue
		}
		out.Communities = append(out.Communities, ms.BGP.Communities...)
		out.LargeCommunities = append(out.LargeCommunities, ms.BGP.LargeCommunities...)
		p := ms.BGP.Primary
		switch {
		case p == "":
		case first == nil:
			first, out.Primary = ms, p
			if !slices.ContainsFunc(rs.tree.Nodes, func(n *NodeProfile) bool { return n.Hostname == p }) {
				rs.errs.Add(byName[ms.Name].at("bgp.primary"), "bgp.primary %s is not a node of the site (node profiles: %s)", short(p), nodeNames(rs.tree.Nodes))
			}
		case p != out.Primary:
			rs.errs.Add(byName[ms.Name].at("bgp.primary"), "bgp.primary %s disagrees with service %s (%s: primary %s) on VIP %s: services sharing a VIP share its primary",
				short(p), first.Name, byName[first.Name].at("bgp.primary"), first.BGP.Primary, v.Name)
		}
	}
	out.Communities = model.SortCommunities(out.Communities)
	out.LargeCommunities = model.SortLargeCommunities(out.LargeCommunities)
	return out
}

// nodeNames lists the host names of the node profiles.
func nodeNames(nodes []*NodeProfile) string {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Hostname
	}
	return strings.Join(names, ", ")
}

// peer converts the i-th route reflector of node profile np, at address
// a, with its session options; bfd says whether the node runs BFD.
func (rs *resolver) peer(np *NodeProfile, i int, a netip.Addr, bfd bool) model.Peer {
	p := np.RouteReflectors[i]
	at := func(f string) Pos { return (&Service{src: np.src}).at(fmt.Sprintf("route_reflectors.%d.%s", i, f)) }
	out := model.Peer{Name: p.Name, Address: a, ASN: p.ASN, PasswordFile: p.PasswordFile, Multihop: p.Multihop,
		BFDIntervalMS: p.BFD.Interval.MS(), BFDMultiplier: p.BFD.Multiplier}
	if p.PasswordFile != "" {
		if err := model.CheckPasswordFile(p.PasswordFile); err != nil {
			rs.errs.Add(at("password_file"), "route_reflectors[%d].password_file: %v", i, err)
		}
	}
	if p.SourceAddress != "" {
		src, err := netip.ParseAddr(p.SourceAddress)
		switch {
		case err != nil || src.Zone() != "" || src.Is4In6():
			rs.errs.Add(at("source_address"), "source address %s is not an IP address", short(p.SourceAddress))
		case src.Is4() != a.Is4():
			rs.errs.Add(at("source_address"), "source address %s is not of the family of the peer's %s", src, a)
		default:
			out.SourceAddress = src
		}
	}
	if d := time.Duration(p.BFD.Interval); d != 0 && (d < 10*time.Millisecond || d > time.Minute) {
		rs.errs.Add(at("bfd.interval"), "bfd.interval %s out of range 10ms..60s", d)
	}
	if (p.BFD.Interval != 0 || p.BFD.Multiplier != 0) && !bfd {
		rs.errs.Add(at("bfd"), "BFD timers of route reflector %s need bfd: true on the node", p.Name)
	}
	return out
}

// nodeBGP converts a node profile's route attributes and graceful
// restart, with the site's communities.
func (rs *resolver) nodeBGP(np *NodeProfile) model.NodeBGP {
	b, site := np.BGP, rs.tree.Site.BGP
	out := model.NodeBGP{
		GracefulRestart:  b.GracefulRestart.Enabled != nil && *b.GracefulRestart.Enabled,
		RestartTime:      b.GracefulRestart.RestartTime,
		Communities:      communities(append(slices.Clone(site.Communities), b.Communities...)),
		LargeCommunities: largeCommunities(append(slices.Clone(site.LargeCommunities), b.LargeCommunities...)),
		MED:              b.MED,
		LocalPref:        b.LocalPref,
		Prepend:          b.Prepend,
	}
	if out.RestartTime != 0 && !out.GracefulRestart {
		rs.errs.Add((&Service{src: np.src}).at("bgp.graceful_restart.restart_time"), "bgp.graceful_restart.restart_time needs graceful restart enabled")
	}
	return out
}

// Defaults of a backup route (I29).
const (
	defaultBackupLocalPref = 50
	defaultBackupPrepend   = 3
)

// nodeBackup is rule I29: when a VIP of the site has a primary node, every
// node says how it announces the VIPs it is backup for: local preference
// 50 (iBGP) and its ASN prepended 3 more times (eBGP) unless its profile's
// bgp.backup says otherwise. A backup local preference not below the
// node's own is refused by the model's validation, at bgp.backup.
func nodeBackup(n *model.Node, np *NodeProfile) {
	bk := &model.Backup{LocalPref: defaultBackupLocalPref, Prepend: defaultBackupPrepend}
	if lp := np.BGP.Backup.LocalPref; lp != nil {
		bk.LocalPref = *lp
	} else if own := n.BGP.EffectiveLocalPref(); own <= defaultBackupLocalPref {
		bk.LocalPref = own / 2
	}
	if p := np.BGP.Backup.Prepend; p != nil {
		bk.Prepend = *p
	}
	n.BGP.Backup = bk
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
			n.RouteReflectors = append(n.RouteReflectors, rs.peer(np, i, a, n.BFD))
		}
		n.BGP = rs.nodeBGP(np)
		slices.SortFunc(n.RouteReflectors, func(a, b model.Peer) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, n)
	}
	return out
}
