// Package backendfw renders what machines around the LB nodes need to match
// the intents: for every backend host an nftables snippet that admits
// exactly the LB nodes to the ports its services use (the other half of
// "only declared ports are open"), and for every route reflector the BIRD 2
// stanza that peers with every LB node profile and accepts only VIP routes
// from them.
//
// Transparent services are the exception on the backends: the LB connects
// from the client's address ("usesrc clientip"), so their ports also admit
// the service's allowed client prefixes, or any source when it admits
// everyone.
//
// The package is pure: it never reads files, the clock or the network.
package backendfw

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render"
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

// Directories of the rendered files.
const (
	BackendDir = "backends"
	RRDir      = "route-reflectors"
	// Table is the nftables table of the backend snippets (family inet).
	Table = "lbctl_backend"
)

// File is one rendered file, Path relative and slash-separated: the same
// type as the node renderer's.
type File = render.File

// Host is what one backend host must admit.
type Host struct {
	Name string
	// Addresses of the host in the model (sorted).
	Addresses []string
	// Ports the LB nodes connect to (services and health checks), sorted.
	Ports []int
	// Transparent are ports of transparent services with the client
	// prefixes admitted directly (nil Sources means any source).
	Transparent []Clients
	// Services using the host, sorted.
	Services []string
	// Monitored are the ports Icinga 2 checks on the host (sorted, a
	// subset of Ports): the site's monitoring hosts are admitted to them.
	Monitored []int
}

// Clients admits client prefixes to ports of transparent services.
type Clients struct {
	Ports   []int
	Sources []netip.Prefix
}

// Hosts lists the backend hosts of the site, sorted by name. A host is
// identified by its name in the model (the inventory name).
func Hosts(site *model.Site) []Host {
	type acc struct {
		addrs, services  map[string]bool
		ports, monitored map[int]bool
		clients          map[string]map[int]bool // sources key -> ports
		sources          map[string][]netip.Prefix
	}
	hosts := map[string]*acc{}
	for _, s := range site.Services {
		served := render.BackendPorts(&s)
		ports := map[int]bool{}
		for _, p := range served {
			ports[p] = true
		}
		if len(ports) > 0 && s.Backend.Port > 0 && s.Backend.Check.Type != model.CheckTCP && s.Backend.Check.Type != model.CheckNone {
			// Protocol checks run against the main port (see render/haproxy).
			ports[s.Backend.Port] = true
		}
		for _, srv := range s.Backend.Servers {
			h := hosts[srv.Name]
			if h == nil {
				h = &acc{addrs: map[string]bool{}, services: map[string]bool{}, ports: map[int]bool{}, monitored: map[int]bool{},
					clients: map[string]map[int]bool{}, sources: map[string][]netip.Prefix{}}
				hosts[srv.Name] = h
			}
			h.addrs[srv.Address.String()] = true
			h.services[s.Name] = true
			for _, p := range served {
				h.monitored[p] = true
			}
			for p := range ports {
				h.ports[p] = true
				if s.Transparent {
					key := strings.Join(text.Strings(s.AllowedSources), " ")
					if h.clients[key] == nil {
						h.clients[key] = map[int]bool{}
						h.sources[key] = s.AllowedSources
					}
					h.clients[key][p] = true
				}
			}
		}
	}
	var out []Host
	for name, h := range hosts {
		host := Host{Name: name, Addresses: sortedKeys(h.addrs), Ports: sortedKeys(h.ports), Services: sortedKeys(h.services), Monitored: sortedKeys(h.monitored)}
		for _, key := range sortedKeys(h.clients) {
			host.Transparent = append(host.Transparent, Clients{Ports: sortedKeys(h.clients[key]), Sources: slices.Clone(h.sources[key])})
		}
		// "Any source" admits everything the others admit: keep it alone.
		if i := slices.IndexFunc(host.Transparent, func(c Clients) bool { return len(c.Sources) == 0 }); i >= 0 {
			anyPorts := host.Transparent[i].Ports
			var rest []Clients
			for j, c := range host.Transparent {
				if j == i {
					continue
				}
				c.Ports = slices.DeleteFunc(c.Ports, func(p int) bool { return slices.Contains(anyPorts, p) })
				if len(c.Ports) > 0 {
					rest = append(rest, c)
				}
			}
			host.Transparent = append([]Clients{host.Transparent[i]}, rest...)
		}
		out = append(out, host)
	}
	slices.SortFunc(out, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// lbAddresses are the addresses of every LB node, split by family.
func lbAddresses(site *model.Site) (v4s, v6s []string, err error) {
	var errs []error
	var v4, v6 []netip.Addr
	for _, n := range site.Nodes {
		for _, ip := range n.Addresses {
			switch {
			case !ip.IsValid():
				errs = append(errs, fmt.Errorf("node %s: address unset", n.Hostname))
			case ip.Unmap().Is4():
				v4 = append(v4, ip.Unmap())
			default:
				v6 = append(v6, ip)
			}
		}
	}
	sortAddrs := func(s []netip.Addr) []string {
		slices.SortFunc(s, netip.Addr.Compare)
		return text.Strings(slices.Compact(s))
	}
	return sortAddrs(v4), sortAddrs(v6), errors.Join(errs...)
}

// monitoringPrefixes are the site's monitoring prefixes, split by family.
func monitoringPrefixes(site *model.Site) (v4, v6 []string, err error) {
	var errs []error
	for _, p := range site.Monitoring {
		switch {
		case !p.IsValid():
			errs = append(errs, errors.New("monitoring prefix unset"))
		case p.Bits() == 0:
			errs = append(errs, fmt.Errorf("monitoring prefix %s would admit everyone", p))
		case p.Addr().Is4():
			v4 = append(v4, p.Masked().String())
		default:
			v6 = append(v6, p.Masked().String())
		}
	}
	return v4, v6, errors.Join(errs...)
}

// Render returns every backend host's snippet and every route reflector's
// stanza, sorted by path.
func Render(site *model.Site) ([]File, error) {
	var errs []error
	v4, v6, err := lbAddresses(site)
	if err != nil {
		errs = append(errs, err)
	}
	if len(site.Nodes) == 0 {
		errs = append(errs, errors.New("no LB node profiles"))
	}
	hosts := Hosts(site)
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	fileNames := text.Unique(names, func(s string) string { return text.Identifier(s, "") })
	var files []File
	for _, h := range hosts {
		data, err := HostSnippet(site, h, v4, v6)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, File{Path: path.Join(BackendDir, fileNames[h.Name]+".nft"), Data: data})
	}
	rrs, err := RouteReflectors(site)
	if err != nil {
		errs = append(errs, err)
	}
	files = append(files, rrs...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("backend firewall: %w", errors.Join(errs...))
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// HostSnippet renders the nftables snippet of one backend host, admitting
// lb4/lb6 (the LB nodes' addresses) to h.Ports. Loading it with "nft -f"
// replaces the table if it exists.
func HostSnippet(site *model.Site, h Host, lb4, lb6 []string) ([]byte, error) {
	mon4, mon6, err := checkHost(site, h)
	if err != nil {
		return nil, err
	}
	w := text.NewWriter("\t")
	snippetHeader(w, site, h, len(mon4)+len(mon6) > 0)
	w.Line("table inet %s", Table)
	w.Line("delete table inet %s", Table)
	w.Line("")
	w.Line("table inet %s {", Table)
	w.In()
	snippetSet(w, "lb4", "ipv4_addr", lb4)
	snippetSet(w, "lb6", "ipv6_addr", lb6)
	snippetSet(w, "ports", "inet_service", ints(h.Ports))
	if len(mon4)+len(mon6) > 0 {
		snippetSet(w, "mon4", "ipv4_addr", mon4)
		snippetSet(w, "mon6", "ipv6_addr", mon6)
		snippetSet(w, "monports", "inet_service", ints(h.Monitored))
	}
	snippetInput(w, h, len(mon4) > 0, len(mon6) > 0)
	w.Out()
	w.Line("}")
	if err := w.Err(); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return w.Bytes(), nil
}

// checkHost checks h's client prefixes and ports and returns the
// monitoring prefixes admitted to it (none when nothing is monitored).
func checkHost(site *model.Site, h Host) (mon4, mon6 []string, err error) {
	var errs []error
	mon4, mon6, err = monitoringPrefixes(site)
	if err != nil {
		errs = append(errs, fmt.Errorf("host %s: %w", h.Name, err))
	}
	if len(h.Monitored) == 0 {
		mon4, mon6 = nil, nil
	}
	for _, c := range h.Transparent {
		for _, src := range c.Sources {
			if !src.IsValid() {
				errs = append(errs, fmt.Errorf("host %s: client prefix unset", h.Name))
			}
		}
	}
	for _, p := range h.Ports {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("host %s: port %d out of range", h.Name, p))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return mon4, mon6, nil
}

// snippetHeader writes the comment that says what the snippet admits.
func snippetHeader(w *text.Writer, site *model.Site, h Host, monitored bool) {
	w.Line("# Backend firewall of %s (%s), site %s, rendered by lbctl.", h.Name, strings.Join(h.Addresses, ", "), site.Name)
	w.Line("# Services: %s", strings.Join(h.Services, " "))
	w.Line("# Admits the LB nodes to the ports below and drops anybody else there;")
	w.Line("# other ports are left alone. Load with nft -f (replaces the table).")
	if monitored {
		w.Line("# The monitoring hosts are admitted to the ports Icinga 2 checks here.")
	}
	if len(h.Transparent) > 0 {
		w.Line("# Transparent services: the LB connects from the client's address, so")
		w.Line("# their ports admit the clients too, and replies must route via the LB.")
	}
}

// snippetSet writes one named set of the snippet's table.
func snippetSet(w *text.Writer, name, typ string, elems []string) {
	w.Line("set %s {", name)
	w.In()
	w.Line("type %s", typ)
	if name == "mon4" || name == "mon6" {
		w.Line("flags interval")
	}
	if len(elems) > 0 {
		w.Line("elements = { %s }", strings.Join(elems, ", "))
	}
	w.Out()
	w.Line("}")
	w.Line("")
}

// snippetInput writes the input chain: the LB nodes, the monitoring
// hosts and the clients of transparent services are admitted to their
// ports, anybody else is dropped there.
func snippetInput(w *text.Writer, h Host, mon4, mon6 bool) {
	w.Line("chain input {")
	w.In()
	w.Line("type filter hook input priority filter; policy accept;")
	w.Line("tcp dport @ports ip saddr @lb4 accept")
	w.Line("tcp dport @ports ip6 saddr @lb6 accept")
	if mon4 {
		w.Line("tcp dport @monports ip saddr @mon4 accept comment \"monitoring\"")
	}
	if mon6 {
		w.Line("tcp dport @monports ip6 saddr @mon6 accept comment \"monitoring\"")
	}
	for _, c := range h.Transparent {
		ports := "{ " + strings.Join(ints(c.Ports), ", ") + " }"
		if len(c.Sources) == 0 {
			w.Line("tcp dport %s accept comment \"transparent: any client\"", ports)
			continue
		}
		var s4, s6 []string
		for _, src := range c.Sources {
			if src.Addr().Is4() {
				s4 = append(s4, src.String())
			} else {
				s6 = append(s6, src.String())
			}
		}
		if len(s4) > 0 {
			w.Line("tcp dport %s ip saddr { %s } accept comment \"transparent: clients\"", ports, strings.Join(s4, ", "))
		}
		if len(s6) > 0 {
			w.Line("tcp dport %s ip6 saddr { %s } accept comment \"transparent: clients\"", ports, strings.Join(s6, ", "))
		}
	}
	w.Line("tcp dport @ports drop")
	w.Out()
	w.Line("}")
}

func ints(ps []int) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprint(p)
	}
	return out
}
