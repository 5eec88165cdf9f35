// Package nftspec is the pure side of lbctl's nftables table: a
// model.Firewall validated and parsed into a Spec (Compile), its canonical
// form (Canonical) and the difference between two firewalls (Diff). It
// links no netlink or nftables library, so planners and the drift check
// (node/drift) can use it; node/nft builds the table from a Spec and reads
// it back from the kernel.
package nftspec

import (
	"cmp"
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

// Spec is a validated model.Firewall with parsed addresses, deduplicated,
// in a deterministic order: the contents of table inet lbctl.
type Spec struct {
	VIP4, VIP6  []netip.Addr
	Svc4, Svc6  []netip.AddrPort
	Transparent bool
	Intercepts  []Intercept
	Handoff     *Handoff
}

// Handoff is a parsed model.Handoff.
type Handoff struct {
	Port   uint16
	MSS    uint16
	Peers4 []netip.Addr
	Back4  []netip.AddrPort
}

// Intercept is one parsed model.Intercept. To is the zero Addr when the
// listener address is left to the kernel ("tproxy ip to :port").
type Intercept struct {
	Prefix netip.Prefix
	Port   uint16
	To     netip.Addr
	ToPort uint16
}

// Is6 reports whether the intercept is IPv6.
func (ic Intercept) Is6() bool { return ic.Prefix.Addr().Is6() }

// Compile validates fw and parses it. Every problem is reported, joined.
func Compile(fw model.Firewall) (Spec, error) {
	var c compiler
	s := Spec{Transparent: fw.Transparent}
	for _, a := range fw.VIPs4 {
		if ip, ok := c.addr("vips4", a, false); ok {
			s.VIP4 = append(s.VIP4, ip)
		}
	}
	for _, a := range fw.VIPs6 {
		if ip, ok := c.addr("vips6", a, true); ok {
			s.VIP6 = append(s.VIP6, ip)
		}
	}
	s.Svc4 = c.pairs("accept4", fw.Accept4, false)
	s.Svc6 = c.pairs("accept6", fw.Accept6, true)
	for _, ic := range fw.Intercepts {
		if x, ok := c.intercept(ic); ok {
			s.Intercepts = append(s.Intercepts, x)
		}
	}
	if fw.Handoff != nil {
		s.Handoff = c.handoff(fw.Handoff)
	}
	if len(c.errs) > 0 {
		return Spec{}, fmt.Errorf("invalid firewall: %w", errors.Join(c.errs...))
	}
	s.Sort()
	return s, nil
}

// compiler parses the fields of a model.Firewall, collecting every error.
type compiler struct {
	errs []error
}

func (c *compiler) addr(field, a string, want6 bool) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(a)
	switch {
	case err != nil:
		c.errs = append(c.errs, fmt.Errorf("%s: %w", field, err))
	case ip.Zone() != "":
		c.errs = append(c.errs, fmt.Errorf("%s: address %q has a zone", field, a))
	case want6 && (!ip.Is6() || ip.Is4In6()):
		c.errs = append(c.errs, fmt.Errorf("%s: %s is not an IPv6 address", field, a))
	case !want6 && !ip.Is4():
		c.errs = append(c.errs, fmt.Errorf("%s: %s is not an IPv4 address", field, a))
	default:
		return ip, true
	}
	return netip.Addr{}, false
}

func (c *compiler) port(field string, p int) (uint16, bool) {
	if p < 1 || p > 65535 {
		c.errs = append(c.errs, fmt.Errorf("%s: port %d out of range 1-65535", field, p))
		return 0, false
	}
	return uint16(p), true
}

func (c *compiler) pairs(field string, in []model.AddrPort, want6 bool) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range in {
		ip, ok1 := c.addr(field, p.Addr, want6)
		pt, ok2 := c.port(field+" "+p.Addr, p.Port)
		if ok1 && ok2 {
			out = append(out, netip.AddrPortFrom(ip, pt))
		}
	}
	return out
}

func (c *compiler) intercept(ic model.Intercept) (Intercept, bool) {
	field := "intercept " + ic.Prefix
	p, err := netip.ParsePrefix(ic.Prefix)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s: %w", field, err))
		return Intercept{}, false
	}
	if p.Masked() != p {
		c.errs = append(c.errs, fmt.Errorf("%s: prefix has host bits set (want %s)", field, p.Masked()))
		return Intercept{}, false
	}
	x := Intercept{Prefix: p}
	var ok bool
	if x.Port, ok = c.port(field, ic.Port); !ok {
		return Intercept{}, false
	}
	if x.ToPort, ok = c.port(field+" to", ic.ToPort); !ok {
		return Intercept{}, false
	}
	if ic.ToAddr != "" {
		if x.To, ok = c.addr(field+" to", ic.ToAddr, p.Addr().Is6()); !ok {
			return Intercept{}, false
		}
	}
	return x, true
}

// handoff parses h; nil when it is invalid (the errors say why).
func (c *compiler) handoff(h *model.Handoff) *Handoff {
	x := &Handoff{}
	var ok bool
	if x.Port, ok = c.port("handoff port", h.Port); !ok {
		x = nil
	}
	if h.MSS < 536 || h.MSS > 65495 {
		c.errs = append(c.errs, fmt.Errorf("handoff mss: %d out of range 536-65495", h.MSS))
		x = nil
	}
	for _, a := range h.Peers4 {
		if ip, ok := c.addr("handoff peers4", a, false); ok && x != nil {
			x.Peers4 = append(x.Peers4, ip)
		}
	}
	b := c.pairs("handoff backends4", h.Backends4, false)
	if x == nil {
		return nil
	}
	x.Back4 = b
	x.MSS = uint16(h.MSS)
	return x
}

// Sort puts every list in the canonical order (the model's: by text) and
// drops duplicates.
func (s *Spec) Sort() {
	byText := func(a, b netip.Addr) int { return strings.Compare(a.String(), b.String()) }
	s.VIP4 = sortCompact(s.VIP4, byText)
	s.VIP6 = sortCompact(s.VIP6, byText)
	byPair := func(a, b netip.AddrPort) int {
		return cmp.Or(byText(a.Addr(), b.Addr()), cmp.Compare(a.Port(), b.Port()))
	}
	s.Svc4 = sortCompact(s.Svc4, byPair)
	s.Svc6 = sortCompact(s.Svc6, byPair)
	s.Intercepts = sortCompact(s.Intercepts, func(a, b Intercept) int {
		return cmp.Or(strings.Compare(a.Prefix.String(), b.Prefix.String()), cmp.Compare(a.Port, b.Port),
			byText(a.To, b.To), cmp.Compare(a.ToPort, b.ToPort))
	})
	if s.Handoff != nil {
		s.Handoff.Peers4 = sortCompact(s.Handoff.Peers4, byText)
		s.Handoff.Back4 = sortCompact(s.Handoff.Back4, byPair)
	}
}

func sortCompact[T comparable](s []T, f func(a, b T) int) []T {
	if len(s) == 0 {
		return nil
	}
	slices.SortFunc(s, f)
	return slices.Compact(s)
}

// Firewall is the canonical model form of s.
func (s Spec) Firewall() model.Firewall {
	fw := model.Firewall{Transparent: s.Transparent}
	for _, a := range s.VIP4 {
		fw.VIPs4 = append(fw.VIPs4, a.String())
	}
	for _, a := range s.VIP6 {
		fw.VIPs6 = append(fw.VIPs6, a.String())
	}
	for _, p := range s.Svc4 {
		fw.Accept4 = append(fw.Accept4, model.AddrPort{Addr: p.Addr().String(), Port: int(p.Port())})
	}
	for _, p := range s.Svc6 {
		fw.Accept6 = append(fw.Accept6, model.AddrPort{Addr: p.Addr().String(), Port: int(p.Port())})
	}
	for _, ic := range s.Intercepts {
		x := model.Intercept{Prefix: ic.Prefix.String(), Port: int(ic.Port), ToPort: int(ic.ToPort)}
		if ic.To.IsValid() {
			x.ToAddr = ic.To.String()
		}
		fw.Intercepts = append(fw.Intercepts, x)
	}
	if h := s.Handoff; h != nil {
		x := &model.Handoff{Port: int(h.Port), MSS: int(h.MSS)}
		for _, a := range h.Peers4 {
			x.Peers4 = append(x.Peers4, a.String())
		}
		for _, p := range h.Back4 {
			x.Backends4 = append(x.Backends4, model.AddrPort{Addr: p.Addr().String(), Port: int(p.Port())})
		}
		fw.Handoff = x
	}
	return fw
}

// Canonical returns fw validated, with addresses in canonical text form,
// every list sorted as the model documents and deduplicated, and empty
// lists nil. Read returns firewalls in this form.
func Canonical(fw model.Firewall) (model.Firewall, error) {
	s, err := Compile(fw)
	if err != nil {
		return model.Firewall{}, err
	}
	return s.Firewall(), nil
}

// Diff lists the differences between want and got, one line each ("vip4:
// missing 192.0.2.10", "svc6: unexpected 2001:db8::10 . 443", ...), sorted;
// empty when both describe the same table. Order and duplicates do not
// matter; invalid entries are compared as text.
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

func addrText(a string) string {
	if ip, err := netip.ParseAddr(a); err == nil {
		return ip.String()
	}
	return a
}

func addrTexts(in []string) []string {
	out := make([]string, len(in))
	for i, a := range in {
		out[i] = addrText(a)
	}
	return out
}

func pairTexts(in []model.AddrPort) []string {
	out := make([]string, len(in))
	for i, p := range in {
		out[i] = addrText(p.Addr) + " . " + strconv.Itoa(p.Port)
	}
	return out
}

func interceptTexts(in []model.Intercept) []string {
	out := make([]string, len(in))
	for i, ic := range in {
		pfx := ic.Prefix
		if p, err := netip.ParsePrefix(pfx); err == nil {
			pfx = p.String()
		}
		out[i] = fmt.Sprintf("%s . %d -> %s", pfx, ic.Port, target(addrText(ic.ToAddr), ic.ToPort))
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
