// Package bird renders an LB node's BIRD 2 configuration (bird.conf) and the
// announcement include files.
//
// bird.conf holds the router id, a device protocol, two static protocols,
// vips4 and vips6, whose routes come from include files (announce4.conf and
// announce6.conf, rewritten by the node's agent to announce the healthy
// VIPs), optional BFD, and one multiprotocol BGP session per route reflector
// with an IPv4 and an IPv6 channel that export only the static VIP routes
// (next hop self) and import nothing.
//
// The package is pure: it never reads files, the clock or the network.
package bird

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

// Names shared with the node's agent (health/bird): the static protocols and
// the include files it rewrites.
const (
	Protocol4    = "vips4"
	Protocol6    = "vips6"
	Include4Name = "announce4.conf"
	Include6Name = "announce6.conf"
	// DefaultIncludeDir is where the include files live on a node.
	DefaultIncludeDir = "/etc/bird/lbctl"
)

// Options tune bird.conf. The zero value of a field means BIRD's default
// (timers) or the package default (paths, BFD).
type Options struct {
	// IncludeDir holds Include4Name and Include6Name.
	IncludeDir string
	// BGP timers in seconds; zero keeps BIRD's defaults (connect delay 5,
	// connect retry 120, error wait 60..300, hold 240, keepalive 80), under
	// which a failed session can take minutes to come back. FastTimers
	// returns faster ones.
	ConnectDelayTime int
	ConnectRetryTime int
	ErrorWaitMin     int
	ErrorWaitMax     int
	HoldTime         int
	KeepaliveTime    int
	// BFDInterval (default 100 ms) and BFDMultiplier (default 3) when the
	// node profile enables BFD.
	BFDInterval   time.Duration
	BFDMultiplier int
}

// FastTimers returns o with reconnect timers that bring a session back
// within seconds after an error or a restart of either side.
func (o Options) FastTimers() Options {
	o.ConnectDelayTime = 1
	o.ConnectRetryTime = 2
	o.ErrorWaitMin, o.ErrorWaitMax = 1, 5
	return o
}

func (o Options) withDefaults() Options {
	if o.IncludeDir == "" {
		o.IncludeDir = DefaultIncludeDir
	}
	if o.BFDInterval <= 0 {
		o.BFDInterval = 100 * time.Millisecond
	}
	if o.BFDMultiplier <= 0 {
		o.BFDMultiplier = 3
	}
	return o
}

// includeHeader starts every include file (the agent writes the same
// format).
const includeHeader = "# VIP routes this node announces (rendered by lbctl; the agent rewrites this file).\n"

// Announce renders the two include files for a set of VIP prefixes: one
// "route PREFIX blackhole;" line per prefix, sorted, without duplicates.
// Prefixes are masked to their network; invalid ones are skipped. An empty
// set gives a comment only, which BIRD accepts inside a static protocol.
func Announce(prefixes []netip.Prefix) (v4, v6 []byte) {
	var p4, p6 []netip.Prefix
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Addr().Is4() {
			p4 = append(p4, p)
		} else {
			p6 = append(p6, p)
		}
	}
	render := func(ps []netip.Prefix) []byte {
		slices.SortFunc(ps, func(a, b netip.Prefix) int {
			return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
		})
		var b bytes.Buffer
		b.WriteString(includeHeader)
		for _, p := range slices.Compact(ps) {
			fmt.Fprintf(&b, "route %s blackhole;\n", p)
		}
		return b.Bytes()
	}
	return render(p4), render(p6)
}

// Prefixes returns the host prefixes (/32, /128) of every VIP address of the
// site: what a node announces when all its VIPs are healthy. Invalid
// addresses are skipped (the haproxy and nft renderers report them).
func Prefixes(site *model.Site) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range site.VIPs {
		for _, a := range v.Addresses {
			if a.IsValid() {
				out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return slices.Compact(out)
}

// ProtocolName is the BGP protocol name of a route reflector in bird.conf:
// "bgp_" and the peer's name with characters BIRD does not accept in
// symbols replaced by '_'.
func ProtocolName(peer string) string {
	return "bgp_" + text.BirdSymbolPart(peer)
}

// Config renders the node's bird.conf: the header and the static
// protocols the agent's includes fill, BFD, and one BGP session per route
// reflector.
func Config(site *model.Site, node *model.Node, opts Options) ([]byte, error) {
	opts = opts.withDefaults()
	c, err := newConf(node, opts)
	if err != nil {
		return nil, fmt.Errorf("bird: node %s: %w", node.Hostname, err)
	}
	c.header(site)
	c.bfd()
	c.filters(site)
	for i, rr := range node.RouteReflectors {
		c.session(rr, c.peers[i])
	}
	c.errs = append(c.errs, c.w.Err())
	if err := errors.Join(c.errs...); err != nil {
		return nil, fmt.Errorf("bird: node %s: %w", node.Hostname, err)
	}
	return c.w.Bytes(), nil
}

// conf is one bird.conf being written: the node's checked addresses and
// the writer.
type conf struct {
	node       *model.Node
	opts       Options
	rid        netip.Addr
	own4, own6 netip.Addr
	// peers are the route reflectors' addresses, protos their protocol
	// names by reflector name.
	peers  []netip.Addr
	protos map[string]string
	w      *text.Writer
	errs   []error
}

// newConf checks the node profile's router id, ASN, addresses and route
// reflectors; all problems are returned together.
func newConf(node *model.Node, opts Options) (*conf, error) {
	c := &conf{node: node, opts: opts, w: text.NewWriter("\t")}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !node.RouterID.Is4() {
		fail("router id %q: want an IPv4 address", model.AddrText(node.RouterID))
	}
	c.rid = node.RouterID
	if node.ASN == 0 {
		fail("asn: missing")
	}
	for _, a := range node.Addresses {
		if !a.IsValid() {
			fail("address unset")
			continue
		}
		ip := a.Unmap()
		if ip.Is4() && !c.own4.IsValid() {
			c.own4 = ip
		}
		if ip.Is6() && !c.own6.IsValid() {
			c.own6 = ip
		}
	}
	if len(node.RouteReflectors) == 0 {
		fail("no route reflectors")
	}
	c.peers = make([]netip.Addr, len(node.RouteReflectors))
	names := make([]string, len(node.RouteReflectors))
	for i, rr := range node.RouteReflectors {
		names[i] = rr.Name
		if !rr.Address.IsValid() {
			fail("route reflector %s: address unset", rr.Name)
			continue
		}
		c.peers[i] = rr.Address.Unmap()
		if rr.ASN == 0 {
			fail("route reflector %s: asn missing", rr.Name)
		}
	}
	c.protos = text.UniqueSep(names, ProtocolName, "_")
	return c, errors.Join(errs...)
}

// quote is v as a BIRD string; a value that cannot be one is an error.
func (c *conf) quote(v string) string {
	q, err := text.BirdString(v)
	if err != nil {
		c.errs = append(c.errs, err)
	}
	return q
}

// header writes the comment, the router id, the device protocol and the
// static protocols whose routes the agent's includes hold.
func (c *conf) header(site *model.Site) {
	w := c.w
	w.Line("# BIRD 2 configuration of LB node %s (site %s), rendered by lbctl. Do not edit.", c.node.Hostname, site.Name)
	w.Line("# The agent announces healthy VIPs by rewriting %s and %s", Include4Name, Include6Name)
	w.Line("# in %s and reconfiguring BIRD.", c.opts.IncludeDir)
	w.Line("")
	w.Line("log syslog all;")
	w.Line("router id %s;", c.rid)
	w.Line("")
	w.Line("protocol device {")
	w.Line("}")
	for _, st := range []struct{ name, family, file string }{
		{Protocol4, "ipv4", Include4Name},
		{Protocol6, "ipv6", Include6Name},
	} {
		w.Line("")
		w.Line("protocol static %s {", st.name)
		w.In()
		w.Line("%s;", st.family)
		// BIRD only recognises include on a line of its own.
		w.Line("include %s;", c.quote(path.Join(c.opts.IncludeDir, st.file)))
		w.Out()
		w.Line("}")
	}
}

// bfd writes the BFD protocol when the node profile asks for it.
func (c *conf) bfd() {
	if !c.node.BFD {
		return
	}
	w := c.w
	interval := fmt.Sprintf("%d ms", c.opts.BFDInterval.Milliseconds())
	w.Line("")
	w.Line("protocol bfd {")
	w.In()
	for _, block := range []string{`interface "*"`, "multihop"} {
		w.Line("%s {", block)
		w.In()
		w.Line("interval %s;", interval)
		w.Line("multiplier %d;", c.opts.BFDMultiplier)
		w.Out()
		w.Line("};")
	}
	w.Out()
	w.Line("}")
}

// session writes the BGP protocol of route reflector rr at peer.
func (c *conf) session(rr model.Peer, peer netip.Addr) {
	w, node := c.w, c.node
	w.Line("")
	w.Line("protocol bgp %s {", c.protos[rr.Name])
	w.In()
	kind := "iBGP"
	if rr.ASN != node.ASN {
		kind = "eBGP"
	}
	w.Line("description %s;", c.quote(fmt.Sprintf("route reflector %s (%s)", rr.Name, kind)))
	local := c.own4
	if peer.Is6() {
		local = c.own6
	}
	if rr.SourceAddress.IsValid() {
		local = rr.SourceAddress.Unmap()
	}
	if local.IsValid() {
		w.Line("local %s as %d;", local, node.ASN)
	} else {
		w.Line("local as %d;", node.ASN)
	}
	w.Line("neighbor %s as %d;", peer, rr.ASN)
	c.sessionOptions(rr)
	timers(w, c.opts)
	ibgp := rr.ASN == node.ASN
	c.channel("ipv4", false, ibgp, peer)
	c.channel("ipv6", true, ibgp, peer)
	w.Out()
	w.Line("}")
}

// channel writes the session's channel of family (is6: IPv6), exporting
// the static protocol proto. A channel of the other family than the
// session needs an explicit next hop of its family; without one the node
// cannot announce that family over this session.
func (c *conf) channel(family string, is6, ibgp bool, peer netip.Addr) {
	w := c.w
	var nh netip.Addr
	if is6 != peer.Is6() {
		nh = c.own4
		if is6 {
			nh = c.own6
		}
		if !nh.IsValid() {
			w.Line("# no %s channel: the node has no %s address for the next hop", family, family)
			return
		}
	}
	w.Line("%s {", family)
	w.In()
	w.Line("import none;")
	w.Line("export filter %s;", FilterName(is6, ibgp))
	w.Line("next hop self;")
	if nh.IsValid() {
		w.Line("next hop address %s;", nh)
	}
	w.Out()
	w.Line("};")
}

func timers(w *text.Writer, o Options) {
	if o.ConnectDelayTime > 0 {
		w.Line("connect delay time %d;", o.ConnectDelayTime)
	}
	if o.ConnectRetryTime > 0 {
		w.Line("connect retry time %d;", o.ConnectRetryTime)
	}
	if o.ErrorWaitMin > 0 && o.ErrorWaitMax >= o.ErrorWaitMin {
		w.Line("error wait time %d, %d;", o.ErrorWaitMin, o.ErrorWaitMax)
	}
	if o.HoldTime > 0 {
		w.Line("hold time %d;", o.HoldTime)
	}
	if o.KeepaliveTime > 0 {
		w.Line("keepalive time %d;", o.KeepaliveTime)
	}
}
