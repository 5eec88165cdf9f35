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
	// peers are the nodes' views of the reflector (session options), by
	// node.
	peers []model.Peer
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
			} else if r.peer.Address != p.Address || r.peer.ASN != p.ASN {
				errs = append(errs, fmt.Errorf("route reflector %s: node %s says %s AS%d, another node %s AS%d",
					p.Name, n.Hostname, p.Address, p.ASN, r.peer.Address, r.peer.ASN))
				continue
			}
			r.nodes = append(r.nodes, n)
			r.peers = append(r.peers, p)
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
	for i, n := range r.nodes {
		on, err := reflectorSession(w, r, n, &r.peers[i], protos[n.Hostname], [2]string{set4, set6}, [2]bool{len(v4) > 0, len(v6) > 0})
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
func reflectorSession(w *text.Writer, r *reflector, n *model.Node, p *model.Peer, proto string, sets [2]string, has [2]bool) (bool, error) {
	nodeAddr := n.SourceAddr(p)
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
	if err2 := reflectorOptions(w, n, p); err2 != nil {
		err = errors.Join(err, fmt.Errorf("route reflector %s: %w", r.peer.Name, err2))
	}
	for i, fam := range []string{"ipv4", "ipv6"} {
		w.Line("%s {", fam)
		w.In()
		if has[i] {
			// RFC 8326: a route of a node shutting down gracefully
			// (lbctl drain --all) is the least preferred.
			w.Line("import filter { if net !~ %s then reject; if %s ~ bgp_community then bgp_local_pref = 0; accept; };",
				sets[i], model.GracefulShutdown.Bird())
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

// reflectorOptions writes the reflector's side of the node's session
// options: the same password file (it must exist on the reflector too),
// multihop and BFD timers.
func reflectorOptions(w *text.Writer, n *model.Node, p *model.Peer) error {
	var err error
	if p.PasswordFile != "" {
		var q string
		if q, err = text.BirdString(p.PasswordFile); err == nil {
			err = model.CheckPasswordFile(p.PasswordFile)
		}
		w.Line("# TCP MD5 password: the same password \"...\"; statement as on the node, in this file on the reflector")
		w.Line("include %s;", q)
	}
	if p.Multihop > 0 {
		w.Line("multihop %d;", p.Multihop)
	}
	switch {
	case !n.BFD:
	case p.BFDIntervalMS > 0 && p.BFDMultiplier > 0:
		w.Line("bfd { interval %d ms; multiplier %d; };", p.BFDIntervalMS, p.BFDMultiplier)
	case p.BFDIntervalMS > 0:
		w.Line("bfd { interval %d ms; };", p.BFDIntervalMS)
	case p.BFDMultiplier > 0:
		w.Line("bfd { multiplier %d; };", p.BFDMultiplier)
	default:
		w.Line("bfd on;")
	}
	return err
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
