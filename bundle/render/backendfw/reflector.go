package backendfw

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

// reflector is a route reflector and the LB nodes peering with it.
type reflector struct {
	peer  model.Peer
	addr  netip.Addr
	nodes []*model.Node
}

// RouteReflectors renders, for every route reflector named in the node
// profiles, route-reflectors/<name>.conf: a BIRD 2 snippet to include in
// the reflector's bird.conf, with one BGP protocol per LB node that accepts
// only the site's VIP host routes from it and sends it nothing.
func RouteReflectors(site *model.Site) ([]File, error) {
	var errs []error
	byName := map[string]*reflector{}
	var order []string
	for i := range site.Nodes {
		n := &site.Nodes[i]
		for _, p := range n.RouteReflectors {
			r := byName[p.Name]
			if r == nil {
				if !p.Address.IsValid() {
					errs = append(errs, fmt.Errorf("route reflector %s: address unset", p.Name))
					continue
				}
				r = &reflector{peer: p, addr: p.Address.Unmap()}
				byName[p.Name] = r
				order = append(order, p.Name)
			} else if r.peer != p {
				errs = append(errs, fmt.Errorf("route reflector %s: node %s says %s AS%d, another node %s AS%d",
					p.Name, n.Hostname, p.Address, p.ASN, r.peer.Address, r.peer.ASN))
				continue
			}
			r.nodes = append(r.nodes, n)
		}
	}
	slices.Sort(order)
	fileNames := text.Unique(order, func(s string) string { return text.Identifier(s, "") })
	var v4, v6 []string
	for _, p := range bird.Prefixes(site) {
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	var files []File
	for _, name := range order {
		data, err := reflectorStanza(site, byName[name], v4, v6)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, File{Path: path.Join(RRDir, fileNames[name]+".conf"), Data: data})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return files, nil
}

// ReflectorProtocol is the name of the BGP protocol of an LB node in a
// route reflector's configuration.
func ReflectorProtocol(hostname string) string {
	return "lbctl_" + text.BirdSymbolPart(hostname)
}

func reflectorStanza(site *model.Site, r *reflector, v4, v6 []string) ([]byte, error) {
	hosts := make([]string, len(r.nodes))
	for i, n := range r.nodes {
		hosts[i] = n.Hostname
	}
	protos := text.UniqueSep(hosts, ReflectorProtocol, "_")
	sym := ReflectorProtocol(r.peer.Name)
	set4, set6 := sym+"_vips4", sym+"_vips6"
	var errs []error
	bfd := false
	w := text.NewWriter("\t")
	w.Line("# BGP sessions of route reflector %s (%s, AS%d) with the LB nodes of site %s,", r.peer.Name, r.addr, r.peer.ASN, site.Name)
	w.Line("# rendered by lbctl. Include it in the reflector's bird.conf. The reflector")
	w.Line("# needs a route to the nodes' next hops (protocol direct or an IGP).")
	w.Line("")
	if len(v4) > 0 {
		w.Line("define %s = [ %s ];", set4, strings.Join(v4, ", "))
	}
	if len(v6) > 0 {
		w.Line("define %s = [ %s ];", set6, strings.Join(v6, ", "))
	}
	for _, n := range r.nodes {
		on, err := reflectorSession(w, r, n, protos[n.Hostname], [2]string{set4, set6}, [2]bool{len(v4) > 0, len(v6) > 0})
		if err != nil {
			errs = append(errs, err)
		}
		bfd = bfd || on
	}
	if bfd {
		w.Line("")
		w.Line("# Sessions with \"bfd on\" need a protocol bfd in the reflector's configuration.")
	}
	if err := w.Err(); err != nil {
		errs = append(errs, fmt.Errorf("route reflector %s: %w", r.peer.Name, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return w.Bytes(), nil
}

// reflectorSession writes the route reflector's BGP session with node n
// named proto, importing the VIP prefixes of sets (IPv4, IPv6) where has
// says the site has any. It reports whether the session uses BFD.
func reflectorSession(w *text.Writer, r *reflector, n *model.Node, proto string, sets [2]string, has [2]bool) (bool, error) {
	var nodeAddr netip.Addr
	for _, a := range n.Addresses {
		if a.IsValid() && a.Unmap().Is4() == r.addr.Is4() {
			nodeAddr = a.Unmap()
			break
		}
	}
	if !nodeAddr.IsValid() {
		return false, fmt.Errorf("route reflector %s: node %s has no %s address to peer with", r.peer.Name, n.Hostname, family(r.addr))
	}
	ibgp := n.ASN == r.peer.ASN
	kind := "eBGP"
	if ibgp {
		kind = "iBGP"
	}
	w.Line("")
	w.Line("protocol bgp %s {", proto)
	w.In()
	desc, err := text.BirdString(fmt.Sprintf("LB node %s (%s)", n.Hostname, kind))
	if err != nil {
		err = fmt.Errorf("route reflector %s: %w", r.peer.Name, err)
	}
	w.Line("description %s;", desc)
	w.Line("local %s as %d;", r.addr, r.peer.ASN)
	w.Line("neighbor %s as %d;", nodeAddr, n.ASN)
	if ibgp {
		w.Line("rr client;")
	}
	if n.BFD {
		w.Line("bfd on;")
	}
	for i, fam := range []string{"ipv4", "ipv6"} {
		w.Line("%s {", fam)
		w.In()
		if has[i] {
			w.Line("import where net ~ %s;", sets[i])
		} else {
			w.Line("import none;")
		}
		w.Line("export none;")
		w.Out()
		w.Line("};")
	}
	w.Out()
	w.Line("}")
	return n.BFD, err
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
