// Package nftspec is the pure side of lbctl's nftables table: a
// model.Firewall validated and viewed as a Spec of netlink-ready values
// (Compile), in the model's one canonical order (model.Firewall.Canonical),
// and the difference between two firewalls (Diff). It
// links no netlink or nftables library, so planners and the drift check
// (node/drift) can use it; node/nft builds the table from a Spec and reads
// it back from the kernel.
package nftspec

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
)

// ErrDrift means the table holds something node/nft.Apply would not have
// programmed (another chain, set or rule, or a changed one).
var ErrDrift = errors.New("table differs from what lbctl programs")

// Spec is a validated model.Firewall in canonical order, its pairs as
// netip.AddrPort and ports as uint16: the contents of table inet lbctl.
type Spec struct {
	VIP4, VIP6  []netip.Addr
	Svc4, Svc6  []netip.AddrPort
	Transparent bool
	Intercepts  []Intercept
	Handoff     *Handoff
}

// Handoff is a model.Handoff as nftables sets it.
type Handoff struct {
	Port   uint16
	MSS    uint16
	Peers4 []netip.Addr
	Back4  []netip.AddrPort
}

// Intercept is one model.Intercept as nftables sets it. To is the zero Addr when the
// listener address is left to the kernel ("tproxy ip to :port").
type Intercept struct {
	Prefix netip.Prefix
	Port   uint16
	To     netip.Addr
	ToPort uint16
}

// Is6 reports whether the intercept is IPv6.
func (ic Intercept) Is6() bool { return ic.Prefix.Addr().Is6() }

// Compile validates fw and returns it as a Spec, in the model's canonical
// order (model.Firewall.Canonical). Every problem is reported, joined.
func Compile(fw model.Firewall) (Spec, error) {
	var c checker
	c.addrs("vips4", fw.VIPs4, false)
	c.addrs("vips6", fw.VIPs6, true)
	c.pairs("accept4", fw.Accept4, false)
	c.pairs("accept6", fw.Accept6, true)
	for _, ic := range fw.Intercepts {
		c.intercept(ic)
	}
	if h := fw.Handoff; h != nil {
		c.port("handoff port", h.Port)
		if h.MSS < 536 || h.MSS > 65495 {
			c.errs = append(c.errs, fmt.Errorf("handoff mss: %d out of range 536-65495", h.MSS))
		}
		c.addrs("handoff peers4", h.Peers4, false)
		c.pairs("handoff backends4", h.Backends4, false)
	}
	if len(c.errs) > 0 {
		return Spec{}, fmt.Errorf("invalid firewall: %w", errors.Join(c.errs...))
	}
	return view(fw.Canonical()), nil
}

// checker validates the fields of a model.Firewall, collecting every error.
type checker struct {
	errs []error
}

func (c *checker) addr(field string, ip netip.Addr, want6 bool) bool {
	switch {
	case !ip.IsValid():
		c.errs = append(c.errs, fmt.Errorf("%s: address unset", field))
	case ip.Zone() != "":
		c.errs = append(c.errs, fmt.Errorf("%s: address %q has a zone", field, ip))
	case want6 && (!ip.Is6() || ip.Is4In6()):
		c.errs = append(c.errs, fmt.Errorf("%s: %s is not an IPv6 address", field, ip))
	case !want6 && !ip.Is4():
		c.errs = append(c.errs, fmt.Errorf("%s: %s is not an IPv4 address", field, ip))
	default:
		return true
	}
	return false
}

func (c *checker) addrs(field string, in []netip.Addr, want6 bool) {
	for _, ip := range in {
		c.addr(field, ip, want6)
	}
}

func (c *checker) port(field string, p int) bool {
	if p < 1 || p > 65535 {
		c.errs = append(c.errs, fmt.Errorf("%s: port %d out of range 1-65535", field, p))
		return false
	}
	return true
}

func (c *checker) pairs(field string, in []model.AddrPort, want6 bool) {
	for _, p := range in {
		c.addr(field, p.Addr, want6)
		c.port(field+" "+model.AddrText(p.Addr), p.Port)
	}
}

func (c *checker) intercept(ic model.Intercept) {
	p := ic.Prefix
	if !p.IsValid() {
		c.errs = append(c.errs, errors.New("intercept: prefix unset"))
		return
	}
	field := "intercept " + p.String()
	switch {
	case p.Addr().Zone() != "":
		c.errs = append(c.errs, fmt.Errorf("%s: prefix has a zone", field))
		return
	case p.Masked() != p:
		c.errs = append(c.errs, fmt.Errorf("%s: prefix has host bits set (want %s)", field, p.Masked()))
		return
	}
	if !c.port(field, ic.Port) || !c.port(field+" to", ic.ToPort) {
		return
	}
	if ic.ToAddr.IsValid() {
		c.addr(field+" to", ic.ToAddr, p.Addr().Is6())
	}
}

// view is fw, valid and in canonical order, as a Spec.
func view(fw model.Firewall) Spec {
	s := Spec{VIP4: fw.VIPs4, VIP6: fw.VIPs6, Transparent: fw.Transparent,
		Svc4: addrPorts(fw.Accept4), Svc6: addrPorts(fw.Accept6)}
	for _, ic := range fw.Intercepts {
		s.Intercepts = append(s.Intercepts, Intercept{Prefix: ic.Prefix, Port: uint16(ic.Port), To: ic.ToAddr, ToPort: uint16(ic.ToPort)})
	}
	if h := fw.Handoff; h != nil {
		s.Handoff = &Handoff{Port: uint16(h.Port), MSS: uint16(h.MSS), Peers4: h.Peers4, Back4: addrPorts(h.Backends4)}
	}
	return s
}

func addrPorts(in []model.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range in {
		out = append(out, netip.AddrPortFrom(p.Addr, uint16(p.Port)))
	}
	return out
}

func modelPairs(in []netip.AddrPort) []model.AddrPort {
	var out []model.AddrPort
	for _, p := range in {
		out = append(out, model.AddrPort{Addr: p.Addr(), Port: int(p.Port())})
	}
	return out
}

// Canonical is s in the model's canonical order, without duplicates
// (model.Firewall.Canonical).
func (s Spec) Canonical() Spec {
	return view(s.Firewall().Canonical())
}

// Firewall is s as a model.Firewall, in the order of s.
func (s Spec) Firewall() model.Firewall {
	fw := model.Firewall{Transparent: s.Transparent, VIPs4: slices.Clone(s.VIP4), VIPs6: slices.Clone(s.VIP6),
		Accept4: modelPairs(s.Svc4), Accept6: modelPairs(s.Svc6)}
	for _, ic := range s.Intercepts {
		fw.Intercepts = append(fw.Intercepts, model.Intercept{Prefix: ic.Prefix, Port: int(ic.Port), ToAddr: ic.To, ToPort: int(ic.ToPort)})
	}
	if h := s.Handoff; h != nil {
		fw.Handoff = &model.Handoff{Port: int(h.Port), MSS: int(h.MSS), Peers4: slices.Clone(h.Peers4), Backends4: modelPairs(h.Back4)}
	}
	return fw
}

// Canonical returns fw validated, every list sorted as the model
// documents and deduplicated, and empty lists nil. Read returns firewalls
// in this form.
func Canonical(fw model.Firewall) (model.Firewall, error) {
	if _, err := Compile(fw); err != nil {
		return model.Firewall{}, err
	}
	return fw.Canonical(), nil
}

// Diff lists the differences between want and got, one line each ("vip4:
// missing 192.0.2.10", "svc6: unexpected 2001:db8::10 . 443", ...), sorted;
// empty when both describe the same table. Order and duplicates do not
// matter.
func Diff(want, got model.Firewall) []string {
	var out []string
	set := func(name string, w, g []string) {
		ws, gs := map[string]bool{}, map[string]bool{}
		for _, x := range w {
			ws[x] = true
		}
		for _, x := range g {
			gs[x] = true
		}
		for x := range ws {
			if !gs[x] {
				out = append(out, name+": missing "+x)
			}
		}
		for x := range gs {
			if !ws[x] {
				out = append(out, name+": unexpected "+x)
			}
		}
	}
	set("vip4", addrTexts(want.VIPs4), addrTexts(got.VIPs4))
	set("vip6", addrTexts(want.VIPs6), addrTexts(got.VIPs6))
	set("svc4", pairTexts(want.Accept4), pairTexts(got.Accept4))
	set("svc6", pairTexts(want.Accept6), pairTexts(got.Accept6))
	set("intercept", interceptTexts(want.Intercepts), interceptTexts(got.Intercepts))
	wh, gh := want.Handoff, got.Handoff
	switch {
	case wh == nil && gh != nil:
		out = append(out, "handoff: unexpected")
	case wh != nil && gh == nil:
		out = append(out, "handoff: missing")
	case wh != nil:
		set("hpeer4", addrTexts(wh.Peers4), addrTexts(gh.Peers4))
		set("hback4", pairTexts(wh.Backends4), pairTexts(gh.Backends4))
		if wh.Port != gh.Port || wh.MSS != gh.MSS {
			out = append(out, fmt.Sprintf("handoff: want port %d mss %d, got port %d mss %d", wh.Port, wh.MSS, gh.Port, gh.MSS))
		}
	}
	if want.Transparent != got.Transparent {
		out = append(out, fmt.Sprintf("transparent: want %v, got %v", want.Transparent, got.Transparent))
	}
	slices.Sort(out)
	return out
}

func addrTexts(in []netip.Addr) []string {
	out := make([]string, len(in))
	for i, a := range in {
		out[i] = model.AddrText(a)
	}
	return out
}

func pairTexts(in []model.AddrPort) []string {
	out := make([]string, len(in))
	for i, p := range in {
		out[i] = model.AddrText(p.Addr) + " . " + strconv.Itoa(p.Port)
	}
	return out
}

func interceptTexts(in []model.Intercept) []string {
	out := make([]string, len(in))
	for i, ic := range in {
		pfx := ""
		if ic.Prefix.IsValid() {
			pfx = ic.Prefix.String()
		}
		out[i] = fmt.Sprintf("%s . %d -> %s", pfx, ic.Port, target(model.AddrText(ic.ToAddr), ic.ToPort))
	}
	return out
}

// target formats a tproxy target like nft: "A:P", "[A6]:P" or ":P".
func target(addr string, port int) string {
	switch {
	case addr == "":
		return ":" + strconv.Itoa(port)
	case strings.Contains(addr, ":"):
		return "[" + addr + "]:" + strconv.Itoa(port)
	}
	return addr + ":" + strconv.Itoa(port)
}
