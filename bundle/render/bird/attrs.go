package bird

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
)

// FilterName is the export filter of the BGP channels of one family (is6)
// on iBGP or eBGP sessions.
func FilterName(is6, ibgp bool) string {
	fam, kind := "4", "ebgp"
	if is6 {
		fam = "6"
	}
	if ibgp {
		kind = "ibgp"
	}
	return "lbctl_export" + fam + "_" + kind
}

// sessionOptions writes the session's password include, multihop,
// graceful restart and BFD lines.
func (c *conf) sessionOptions(rr model.Peer) {
	w, node := c.w, c.node
	if rr.PasswordFile != "" {
		if err := model.CheckPasswordFile(rr.PasswordFile); err != nil {
			c.errs = append(c.errs, fmt.Errorf("route reflector %s: %w", rr.Name, err))
		}
		w.Line(`# TCP MD5 password: a file on this node holding password "..."; (never in a bundle)`)
		// BIRD only recognises include on a line of its own.
		w.Line("include %s;", c.quote(rr.PasswordFile))
	}
	if rr.Multihop > 0 {
		w.Line("multihop %d;", rr.Multihop)
	}
	if node.BGP.GracefulRestart {
		w.Line("graceful restart on;")
		if node.BGP.RestartTime > 0 {
			w.Line("graceful restart time %d;", node.BGP.RestartTime)
		}
	}
	if !node.BFD {
		return
	}
	if rr.BFDIntervalMS == 0 && rr.BFDMultiplier == 0 {
		w.Line("bfd on;")
		return
	}
	var opts []string
	if rr.BFDIntervalMS > 0 {
		opts = append(opts, fmt.Sprintf("interval %d ms;", rr.BFDIntervalMS))
	}
	if rr.BFDMultiplier > 0 {
		opts = append(opts, fmt.Sprintf("multiplier %d;", rr.BFDMultiplier))
	}
	w.Line("bfd { %s };", strings.Join(opts, " "))
}

// filters writes the export filters the sessions use: one per family and
// session kind (iBGP, eBGP). Each exports only its static protocol's
// routes (the VIPs the agent announces) and sets the node's attributes,
// then each VIP's: its communities and, where another node is its
// primary, the backup attributes. On iBGP a route carrying
// GRACEFUL_SHUTDOWN (the agent adds it to every route during lbctl
// drain --all) gets local preference 0 (RFC 8326).
func (c *conf) filters(site *model.Site) {
	kinds := map[bool]bool{}
	for _, rr := range c.node.RouteReflectors {
		kinds[rr.ASN == c.node.ASN] = true
	}
	for _, ibgp := range []bool{true, false} {
		if !kinds[ibgp] {
			continue
		}
		for _, is6 := range []bool{false, true} {
			c.filter(site, is6, ibgp)
		}
	}
}

// filter writes the export filter of one family and session kind.
func (c *conf) filter(site *model.Site, is6, ibgp bool) {
	w, b := c.w, &c.node.BGP
	proto := Protocol4
	if is6 {
		proto = Protocol6
	}
	w.Line("")
	w.Line("filter %s {", FilterName(is6, ibgp))
	w.In()
	w.Line("if proto != %s then reject;", c.quote(proto))
	c.attrs(b.Communities, b.LargeCommunities)
	if b.MED != nil {
		w.Line("bgp_med = %d;", *b.MED)
	}
	if ibgp && b.LocalPref != nil {
		w.Line("bgp_local_pref = %d;", *b.LocalPref)
	}
	if !ibgp {
		c.prepend(b.Prepend)
	}
	for _, v := range site.VIPs {
		c.vipAttrs(&v, is6, ibgp)
	}
	if ibgp {
		w.Line("if %s ~ bgp_community then bgp_local_pref = 0;", model.GracefulShutdown.Bird())
	}
	w.Line("accept;")
	w.Out()
	w.Line("}")
}

// vipAttrs writes the attributes of VIP v's routes of one family, if it
// has any.
func (c *conf) vipAttrs(v *model.VIP, is6, ibgp bool) {
	var set []string
	for _, a := range v.Addresses {
		if a.IsValid() && a.Unmap().Is6() == is6 {
			set = append(set, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String())
		}
	}
	backup := v.BGP.Primary != "" && v.BGP.Primary != c.node.Hostname
	bk := c.node.BGP.Backup
	if bk == nil {
		bk = &model.Backup{LocalPref: 50, Prepend: 3}
	}
	backup = backup && (ibgp || bk.Prepend > 0)
	if len(set) == 0 || (len(v.BGP.Communities) == 0 && len(v.BGP.LargeCommunities) == 0 && !backup) {
		return
	}
	w := c.w
	w.Line("if net ~ [ %s ] then {", strings.Join(set, ", "))
	w.In()
	c.attrs(v.BGP.Communities, v.BGP.LargeCommunities)
	switch {
	case backup && ibgp:
		w.Line("bgp_local_pref = %d; # backup: primary is %s", bk.LocalPref, v.BGP.Primary)
	case backup:
		w.Line("# backup: primary is %s", v.BGP.Primary)
		c.prepend(bk.Prepend)
	}
	w.Out()
	w.Line("}")
}

// attrs writes the lines adding communities and large communities.
func (c *conf) attrs(cs []model.Community, ls []model.LargeCommunity) {
	for _, x := range cs {
		c.w.Line("bgp_community.add(%s);", x.Bird())
	}
	for _, x := range ls {
		c.w.Line("bgp_large_community.add(%s);", x.Bird())
	}
}

// prepend writes n prepends of the node's ASN.
func (c *conf) prepend(n int) {
	for range n {
		c.w.Line("bgp_path.prepend(%d);", c.node.ASN)
	}
}
