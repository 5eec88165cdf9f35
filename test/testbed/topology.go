package testbed

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
)

// Defaults.
const (
	// DefaultDir holds the state file, BIRD configs and sockets, logs and
	// certificates.
	DefaultDir = "/run/lbctl-testbed"
	// defaultPrefix starts the name of every namespace of the testbed.
	defaultPrefix = "lbtb-"
	// defaultASN is used when the model has no node profile.
	defaultASN = 65000
	// NetNSDir is where ip(8) keeps named network namespaces.
	NetNSDir = "/run/netns"
)

// Addressing of the testbed (documentation ranges only).
var (
	coreNet4    = netip.MustParsePrefix("198.51.100.0/25")
	coreNet6    = netip.MustParsePrefix("2001:db8:100::/64")
	clientNet4  = netip.MustParsePrefix("198.51.100.128/25")
	clientNet6  = netip.MustParsePrefix("2001:db8:c::/64")
	backendNet4 = netip.MustParsePrefix("203.0.113.0/24")
	backendNet6 = netip.MustParsePrefix("2001:db8:203::/64")
	// vipNet4 and vipNet6 are where VIP routes are looked for at the router.
	vipNet4 = netip.MustParsePrefix("192.0.2.0/24")
	vipNet6 = netip.MustParsePrefix("2001:db8::/32")

	RouterCore4   = netip.MustParseAddr("198.51.100.1")
	RouterCore6   = netip.MustParseAddr("2001:db8:100::1")
	RRCore4       = netip.MustParseAddr("198.51.100.2")
	RRCore6       = netip.MustParseAddr("2001:db8:100::2")
	RouterClient4 = netip.MustParseAddr("198.51.100.129")
	RouterClient6 = netip.MustParseAddr("2001:db8:c::1")
	Client4       = netip.MustParseAddr("198.51.100.130")
	Client6       = netip.MustParseAddr("2001:db8:c::2")
)

// Interface names inside the namespaces.
const (
	coreBridge    = "br-core"
	backendBridge = "br-bk"
	coreIf        = "core"
	backendIf     = "bk"
	clientIf      = "client"
	hostIf        = "eth0"
)

// maxNodes is the most LB nodes the testbed runs (lb1 ... lb8).
const maxNodes = 8

// nodeSlot is the fixed addressing of LB node i (0-based): lbN with
// 198.51.100.1N and 2001:db8:100::1N on the core, 203.0.113.N and
// 2001:db8:203::N on the backend segment.
type nodeSlot struct {
	name                             string
	core4, core6, backend4, backend6 netip.Addr
}

func slot(i int) nodeSlot {
	n := i + 1
	return nodeSlot{
		name:     fmt.Sprintf("lb%d", n),
		core4:    netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 10+n)),
		core6:    netip.MustParseAddr(fmt.Sprintf("2001:db8:100::%d", 10+n)),
		backend4: netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", n)),
		backend6: netip.MustParseAddr(fmt.Sprintf("2001:db8:203::%d", n)),
	}
}

// nodeSlots are the LB nodes of a model with n node profiles: as many as
// the profiles, at least two.
func nodeSlots(n int) []nodeSlot {
	out := make([]nodeSlot, max(n, 2))
	for i := range out {
		out[i] = slot(i)
	}
	return out
}

// Node is one LB node of the testbed.
type Node struct {
	// Name is the testbed's name of the node: "lb1", "lb2", ...
	Name string `json:"name"`
	// Hostname is the node profile's host name from the model (Name when
	// the model has no profile for this slot).
	Hostname string `json:"hostname"`
	// NetNS is the named network namespace ("lbtb-lb1"); NetNSPath its
	// file (/run/netns/lbtb-lb1), usable with nsenter --net or setns.
	NetNS     string `json:"netns"`
	NetNSPath string `json:"netns_path"`
	// Dir is the node's directory in the testbed directory; CertDir holds
	// <certificate>.pem for every TLS certificate of the model.
	Dir     string `json:"dir"`
	CertDir string `json:"cert_dir"`
	// Core4/Core6 are the addresses on the core segment (interface "core"),
	// Backend4/Backend6 on the backend segment (interface "bk").
	Core4    netip.Addr `json:"core4"`
	Core6    netip.Addr `json:"core6"`
	Backend4 netip.Addr `json:"backend4"`
	Backend6 netip.Addr `json:"backend6"`
	// Extra are the model's other node addresses, added on "core": IPv4
	// ones in the core /25, IPv6 ones with their /64 (the router and the
	// route reflector get ::1 and ::2 in each such /64).
	Extra []netip.Addr `json:"extra,omitempty"`
	// PID, StopSignal and Cgroup are set when Options.LaunchNode provided
	// the namespace (e.g. systemd as PID 1): Down stops PID with StopSignal
	// (then SIGKILL) and removes Cgroup.
	PID        int    `json:"pid,omitempty"`
	PIDStart   uint64 `json:"pid_start,omitempty"`
	StopSignal int    `json:"stop_signal,omitempty"`
	Cgroup     string `json:"cgroup,omitempty"`
}

// Backend is one backend address of the model with its own namespace and
// server process.
type Backend struct {
	// Name is the model's server name (the first by name when one address
	// carries several).
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	NetNS   string     `json:"netns"`
	// Ports by protocol: HTTP and HTTPS answer requests; TCP, SMTP and LDAP
	// answer one line (SMTP as a 220 greeting, LDAP binds succeed).
	HTTP  []int `json:"http,omitempty"`
	HTTPS []int `json:"https,omitempty"`
	TCP   []int `json:"tcp,omitempty"`
	SMTP  []int `json:"smtp,omitempty"`
	LDAP  []int `json:"ldap,omitempty"`
	// Services using this backend (sorted).
	Services []string `json:"services"`
}

// Ports returns every port of the backend, sorted.
func (b *Backend) Ports() []int {
	var all []int
	for _, ps := range [][]int{b.HTTP, b.HTTPS, b.TCP, b.SMTP, b.LDAP} {
		all = append(all, ps...)
	}
	slices.Sort(all)
	return all
}

// layout is the pure plan of a testbed: names, addresses and the ip(8)
// commands that build its links, derived from the model and the options.
type layout struct {
	prefix, dir            string
	asn                    uint32
	router, rr, client, bk string
	nodes                  []Node
	backends               []Backend
	steps                  [][]string // ip(8) argv, without "ip"
	sysctls                []sysctl
}

type sysctl struct{ ns, key, value string }

func (l *layout) namespaces() []string {
	out := []string{l.router, l.rr, l.client, l.bk}
	for _, n := range l.nodes {
		out = append(out, n.NetNS)
	}
	for _, b := range l.backends {
		out = append(out, b.NetNS)
	}
	return out
}

// reserved are addresses a model may not use for backends or nodes.
func reservedAddrs() map[netip.Addr]string {
	r := map[netip.Addr]string{
		RouterCore4: "router", RouterCore6: "router", RRCore4: "route reflector", RRCore6: "route reflector",
		RouterClient4: "router", RouterClient6: "router", Client4: "client", Client6: "client",
	}
	for _, s := range nodeSlots(maxNodes) {
		for _, a := range []netip.Addr{s.core4, s.core6, s.backend4, s.backend6} {
			r[a] = s.name
		}
	}
	return r
}

// plan derives the layout from the model. It reads nothing from the host.
func plan(m *model.Site, prefix, dir string) (*layout, error) {
	if m == nil {
		return nil, fmt.Errorf("testbed: no model")
	}
	if len(m.Nodes) > maxNodes {
		return nil, fmt.Errorf("testbed: the model has %d node profiles, the testbed runs at most %d LB nodes", len(m.Nodes), maxNodes)
	}
	l := &layout{
		prefix: prefix, dir: dir, asn: defaultASN,
		router: prefix + "router", rr: prefix + "rr", client: prefix + "client", bk: prefix + "bk",
	}
	reserved := reservedAddrs()
	var errs []error
	nodes := slices.Clone(m.Nodes)
	slices.SortFunc(nodes, func(a, b model.Node) int { return cmp.Compare(a.Hostname, b.Hostname) })
	for i, s := range nodeSlots(len(m.Nodes)) {
		n := Node{
			Name: s.name, Hostname: s.name, NetNS: prefix + s.name,
			NetNSPath: filepath.Join(NetNSDir, prefix+s.name),
			Dir:       filepath.Join(dir, s.name), CertDir: filepath.Join(dir, s.name, "certs"),
			Core4: s.core4, Core6: s.core6, Backend4: s.backend4, Backend6: s.backend6,
		}
		if i < len(nodes) {
			mn := nodes[i]
			n.Hostname = mn.Hostname
			if mn.ASN != 0 {
				if i > 0 && mn.ASN != l.asn {
					errs = append(errs, fmt.Errorf("node %s: ASN %d differs from %d (the testbed's sessions are iBGP)", mn.Hostname, mn.ASN, l.asn))
				}
				l.asn = mn.ASN
			}
			for _, rr := range mn.RouteReflectors {
				if a := rr.Address; a != RRCore4 && a != RRCore6 {
					errs = append(errs, fmt.Errorf("node %s: route reflector %s at %s: the testbed's route reflector is %s or %s", mn.Hostname, rr.Name, rr.Address, RRCore4, RRCore6))
				}
				if rr.ASN != 0 && rr.ASN != mn.ASN {
					errs = append(errs, fmt.Errorf("node %s: route reflector %s has ASN %d, the node %d (the testbed's sessions are iBGP)", mn.Hostname, rr.Name, rr.ASN, mn.ASN))
				}
			}
			for _, a := range mn.Addresses {
				if !a.IsValid() {
					errs = append(errs, fmt.Errorf("node %s: address unset", mn.Hostname))
					continue
				}
				if a == n.Core4 || a == n.Core6 {
					continue
				}
				if owner, ok := reserved[a]; ok {
					errs = append(errs, fmt.Errorf("node %s: address %s belongs to the testbed's %s", mn.Hostname, a, owner))
					continue
				}
				if p := extraPrefix(a).Masked(); a.Is6() && p != coreNet6 && (a == nthAddr(p, 1) || a == nthAddr(p, 2)) {
					errs = append(errs, fmt.Errorf("node %s: address %s: ::1 and ::2 of its /64 are the testbed router's and route reflector's", mn.Hostname, a))
					continue
				}
				if err := checkNodeExtra(a); err != nil {
					errs = append(errs, fmt.Errorf("node %s: address %s: %w", mn.Hostname, a, err))
					continue
				}
				n.Extra = append(n.Extra, a)
			}
		}
		l.nodes = append(l.nodes, n)
	}
	backends, err := backendsOf(m, prefix, reserved)
	if err != nil {
		errs = append(errs, err)
	}
	l.backends = backends
	if len(errs) > 0 {
		return nil, fmt.Errorf("testbed: model does not fit the testbed: %w", joinErrs(errs))
	}
	l.buildSteps()
	return l, nil
}

func checkNodeExtra(a netip.Addr) error {
	switch {
	case vipNet4.Contains(a):
		return fmt.Errorf("in %s, kept for VIPs", vipNet4)
	case clientNet4.Contains(a), clientNet6.Contains(a):
		return fmt.Errorf("in the client's prefix")
	case backendNet4.Contains(a), backendNet6.Contains(a):
		return fmt.Errorf("in the backends' prefix")
	case coreNet4.Contains(a), coreNet6.Contains(a), docRange(a):
		return nil
	}
	return fmt.Errorf("outside the documentation ranges the testbed may use")
}

// docRange reports whether a is in a documentation range.
func docRange(a netip.Addr) bool {
	for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

// backendProto is what a backend port speaks (http, https, tcp, smtp,
// ldap) and for which service.
type backendProto struct {
	kind    string
	service string
}

// backendAcc gathers what the model says about one backend address.
type backendAcc struct {
	names    []string
	ports    map[int]backendProto
	services map[string]bool
}

// backendsOf gathers every backend address of the model with the ports its
// services use and the protocol each port speaks.
func backendsOf(m *model.Site, prefix string, reserved map[netip.Addr]string) ([]Backend, error) {
	by := map[netip.Addr]*backendAcc{}
	var errs []error
	for _, svc := range m.Services {
		kind, ports := serviceKind(svc), servicePorts(svc)
		for _, srv := range svc.Backend.Servers {
			if err := addServer(by, reserved, svc.Name, srv, kind, ports); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	addrs := make([]netip.Addr, 0, len(by))
	for a := range by {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	out := make([]Backend, len(addrs))
	for i, a := range addrs {
		out[i] = by[a].backend(a, prefix+"be"+strconv.Itoa(i+1))
	}
	return out, nil
}

// serviceKind is what the service's backend ports speak.
func serviceKind(svc model.Service) string {
	switch {
	case svc.Mode == model.ModeHTTP && svc.Backend.TLS:
		return "https"
	case svc.Mode == model.ModeHTTP:
		return "http"
	case svc.Backend.Check.Type == model.CheckSMTP:
		return "smtp"
	case svc.Backend.Check.Type == model.CheckLDAP:
		return "ldap"
	}
	return "tcp"
}

// servicePorts are the backend ports the service connects to.
func servicePorts(svc model.Service) map[int]bool {
	ports := map[int]bool{}
	if svc.Backend.Port > 0 {
		ports[svc.Backend.Port] = true
	}
	for _, ln := range svc.Listeners {
		if ln.Action == model.ActionServe && ln.BackendPort > 0 {
			ports[ln.BackendPort] = true
		}
	}
	return ports
}

// addServer records server srv of service svc, whose ports speak kind.
func addServer(by map[netip.Addr]*backendAcc, reserved map[netip.Addr]string, svc string, srv model.Server, kind string, ports map[int]bool) error {
	a := srv.Address.Unmap()
	if owner, ok := reserved[a]; ok {
		return fmt.Errorf("service %s: server %s: address %s belongs to the testbed's %s", svc, srv.Name, a, owner)
	}
	if err := checkBackendAddr(a); err != nil {
		return fmt.Errorf("service %s: server %s: address %s: %w", svc, srv.Name, a, err)
	}
	b := by[a]
	if b == nil {
		b = &backendAcc{ports: map[int]backendProto{}, services: map[string]bool{}}
		by[a] = b
	}
	b.names = append(b.names, srv.Name)
	b.services[svc] = true
	var errs []error
	for p := range ports {
		if have, ok := b.ports[p]; ok && have.kind != kind {
			errs = append(errs, fmt.Errorf("server %s (%s) port %d: service %s wants %s, service %s wants %s", srv.Name, a, p, have.service, have.kind, svc, kind))
			continue
		}
		b.ports[p] = backendProto{kind, svc}
	}
	return joinErrs(errs)
}

// backend is the Backend at address a in namespace netns.
func (acc *backendAcc) backend(a netip.Addr, netns string) Backend {
	slices.Sort(acc.names)
	be := Backend{Name: acc.names[0], Address: a, NetNS: netns}
	for p, pr := range acc.ports {
		switch pr.kind {
		case "http":
			be.HTTP = append(be.HTTP, p)
		case "https":
			be.HTTPS = append(be.HTTPS, p)
		case "smtp":
			be.SMTP = append(be.SMTP, p)
		case "ldap":
			be.LDAP = append(be.LDAP, p)
		default:
			be.TCP = append(be.TCP, p)
		}
	}
	for _, ps := range [][]int{be.HTTP, be.HTTPS, be.TCP, be.SMTP, be.LDAP} {
		slices.Sort(ps)
	}
	for s := range acc.services {
		be.Services = append(be.Services, s)
	}
	slices.Sort(be.Services)
	return be
}

func checkBackendAddr(a netip.Addr) error {
	switch {
	case vipNet4.Contains(a):
		return fmt.Errorf("in %s, kept for VIPs", vipNet4)
	case coreNet4.Contains(a), coreNet6.Contains(a):
		return fmt.Errorf("in the core segment's prefix")
	case clientNet4.Contains(a), clientNet6.Contains(a):
		return fmt.Errorf("in the client's prefix")
	case docRange(a):
		return nil
	}
	return fmt.Errorf("outside the documentation ranges the testbed may use")
}

// hostPrefix is a /32 or /128 for a.
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// onNet returns a's prefix on the given network if it is inside, else a
// host prefix.
func onNet(a netip.Addr, nets ...netip.Prefix) (p netip.Prefix, inside bool) {
	for _, n := range nets {
		if n.Contains(a) {
			return netip.PrefixFrom(a, n.Bits()), true
		}
	}
	return hostPrefix(a), false
}

// ipSteps are ip(8) commands, each "-n NAMESPACE ..." without "ip".
type ipSteps [][]string

func (s *ipSteps) add(ns string, args ...string) {
	*s = append(*s, append([]string{"-n", ns}, args...))
}

// addr adds p on dev (IPv6 without duplicate address detection).
func (s *ipSteps) addr(ns, dev string, p netip.Prefix) {
	if p.Addr().Is6() {
		s.add(ns, "addr", "add", p.String(), "dev", dev, "nodad")
	} else {
		s.add(ns, "addr", "add", p.String(), "dev", dev)
	}
}

// defaults adds default routes via the valid ones of gw4 and gw6.
func (s *ipSteps) defaults(ns string, gw4, gw6 netip.Addr, dev string, onlink bool) {
	for _, gw := range []netip.Addr{gw4, gw6} {
		if !gw.IsValid() {
			continue
		}
		fam := "-4"
		if gw.Is6() {
			fam = "-6"
		}
		args := []string{fam, "route", "add", "default", "via", gw.String(), "dev", dev}
		if onlink {
			args = append(args, "onlink")
		}
		s.add(ns, args...)
	}
}

func (s *ipSteps) bridge(ns, name string) {
	s.add(ns, "link", "add", name, "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
	s.add(ns, "link", "set", name, "up")
}

// veth creates dev in ns with its peer port in the bridge namespace.
func (s *ipSteps) veth(ns, dev, bridgeNS, bridgeName, port string) {
	s.add(ns, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", bridgeNS)
	s.add(bridgeNS, "link", "set", port, "master", bridgeName)
	s.add(bridgeNS, "link", "set", port, "up")
}

func (s *ipSteps) up(ns, dev string) { s.add(ns, "link", "set", dev, "up") }

// buildSteps lays down the ip(8) commands building links, addresses and
// routes in order, and the sysctls. Namespaces already exist when they run.
func (l *layout) buildSteps() {
	var s ipSteps
	l.coreSteps(&s)
	l.nodeSteps(&s)
	l.clientSteps(&s)
	l.backendSteps(&s)
	l.steps = s
	l.forwarding()
}

// coreSteps: the core segment, a bridge in the router namespace, with the
// route reflector on it.
func (l *layout) coreSteps(s *ipSteps) {
	s.bridge(l.router, coreBridge)
	s.addr(l.router, coreBridge, netip.PrefixFrom(RouterCore4, coreNet4.Bits()))
	s.addr(l.router, coreBridge, netip.PrefixFrom(RouterCore6, coreNet6.Bits()))
	s.veth(l.rr, coreIf, l.router, coreBridge, "p-rr")
	s.addr(l.rr, coreIf, netip.PrefixFrom(RRCore4, coreNet4.Bits()))
	s.addr(l.rr, coreIf, netip.PrefixFrom(RRCore6, coreNet6.Bits()))
	s.up(l.rr, coreIf)
	s.defaults(l.rr, RouterCore4, RouterCore6, coreIf, false)
}

// nodeSteps: the backend segment (a bridge in its own namespace) and every
// LB node on both segments.
func (l *layout) nodeSteps(s *ipSteps) {
	s.bridge(l.bk, backendBridge)
	for _, n := range l.nodes {
		s.veth(n.NetNS, coreIf, l.router, coreBridge, "p-"+n.Name)
		s.addr(n.NetNS, coreIf, netip.PrefixFrom(n.Core4, coreNet4.Bits()))
		s.addr(n.NetNS, coreIf, netip.PrefixFrom(n.Core6, coreNet6.Bits()))
		for _, a := range n.Extra {
			s.addr(n.NetNS, coreIf, extraPrefix(a))
		}
		s.up(n.NetNS, coreIf)
		s.defaults(n.NetNS, RouterCore4, RouterCore6, coreIf, false)
		s.veth(n.NetNS, backendIf, l.bk, backendBridge, "p-"+n.Name)
		s.addr(n.NetNS, backendIf, netip.PrefixFrom(n.Backend4, backendNet4.Bits()))
		s.addr(n.NetNS, backendIf, netip.PrefixFrom(n.Backend6, backendNet6.Bits()))
		s.up(n.NetNS, backendIf)
	}
	// Extra IPv6 node addresses outside the core prefix bring their /64
	// onto the core segment: the router and the route reflector take ::1
	// and ::2 in it, so BGP next hops from those addresses are on-link.
	for _, p := range extraNets(l.nodes) {
		s.addr(l.router, coreBridge, netip.PrefixFrom(nthAddr(p, 1), p.Bits()))
		s.addr(l.rr, coreIf, netip.PrefixFrom(nthAddr(p, 2), p.Bits()))
	}
}

// clientSteps: the client behind the router.
func (l *layout) clientSteps(s *ipSteps) {
	s.add(l.client, "link", "add", hostIf, "type", "veth", "peer", "name", clientIf, "netns", l.router)
	s.addr(l.router, clientIf, netip.PrefixFrom(RouterClient4, clientNet4.Bits()))
	s.addr(l.router, clientIf, netip.PrefixFrom(RouterClient6, clientNet6.Bits()))
	s.up(l.router, clientIf)
	s.addr(l.client, hostIf, netip.PrefixFrom(Client4, clientNet4.Bits()))
	s.addr(l.client, hostIf, netip.PrefixFrom(Client6, clientNet6.Bits()))
	s.up(l.client, hostIf)
	s.defaults(l.client, RouterClient4, RouterClient6, hostIf, false)
}

// backendSteps: one namespace per backend address on the backend bridge,
// its default route via the first LB node; addresses outside the backend
// prefixes get host routes on every LB node.
func (l *layout) backendSteps(s *ipSteps) {
	gw := l.nodes[0]
	for i, b := range l.backends {
		port := "p-be" + strconv.Itoa(i+1)
		s.veth(b.NetNS, hostIf, l.bk, backendBridge, port)
		p, inside := onNet(b.Address, backendNet4, backendNet6)
		s.addr(b.NetNS, hostIf, p)
		s.up(b.NetNS, hostIf)
		if b.Address.Is4() {
			s.defaults(b.NetNS, gw.Backend4, netip.Addr{}, hostIf, !inside)
		} else {
			s.defaults(b.NetNS, netip.Addr{}, gw.Backend6, hostIf, !inside)
		}
		if !inside {
			for _, n := range l.nodes {
				s.add(n.NetNS, "route", "add", p.String(), "dev", backendIf)
			}
		}
	}
}

// forwarding: the router and the LB nodes forward; the router spreads
// connections, not clients, over the ECMP next hops (hash on ports too), so
// the one client reaches both LB nodes.
func (l *layout) forwarding() {
	fwd := []string{l.router}
	for _, n := range l.nodes {
		fwd = append(fwd, n.NetNS)
	}
	for _, ns := range fwd {
		l.sysctls = append(l.sysctls,
			sysctl{ns, "net/ipv4/ip_forward", "1"},
			sysctl{ns, "net/ipv6/conf/all/forwarding", "1"})
	}
	l.sysctls = append(l.sysctls,
		sysctl{l.router, "net/ipv4/fib_multipath_hash_policy", "1"},
		sysctl{l.router, "net/ipv6/fib_multipath_hash_policy", "1"})
}

// gatewayRoutes are the ip(8) commands pointing every backend's default
// route at node.
func (l *layout) gatewayRoutes(node Node) [][]string {
	var out [][]string
	for _, b := range l.backends {
		_, inside := onNet(b.Address, backendNet4, backendNet6)
		gw, fam := node.Backend4, "-4"
		if b.Address.Is6() {
			gw, fam = node.Backend6, "-6"
		}
		args := []string{"-n", b.NetNS, fam, "route", "replace", "default", "via", gw.String(), "dev", hostIf}
		if !inside {
			args = append(args, "onlink")
		}
		out = append(out, args)
	}
	return out
}

// describe prints the steps, one command a line (for tests and debugging).
func (l *layout) describe() string {
	var b strings.Builder
	for _, s := range l.steps {
		b.WriteString("ip " + strings.Join(s, " ") + "\n")
	}
	for _, s := range l.sysctls {
		fmt.Fprintf(&b, "sysctl %s %s=%s\n", s.ns, s.key, s.value)
	}
	return b.String()
}

// extraPrefix is the prefix an extra node address is added with.
func extraPrefix(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, coreNet4.Bits())
	}
	return netip.PrefixFrom(a, 64)
}

// extraNets are the IPv6 /64s of extra node addresses outside the core
// prefix, sorted.
func extraNets(nodes []Node) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range nodes {
		for _, a := range n.Extra {
			if p := extraPrefix(a).Masked(); a.Is6() && p != coreNet6 && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// nthAddr is the n-th address of p (n small).
func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}
