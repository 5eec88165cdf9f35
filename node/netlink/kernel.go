package netlink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/jsimonetti/rtnetlink/v2"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/netlink/netstate"
)

// DefaultInterface carries the VIPs unless configured otherwise.
const DefaultInterface = "lo"

// tproxyInterface is where the TPROXY local routes point, whatever the VIP
// interface.
const tproxyInterface = "lo"

// Kernel is the Conn for the running kernel.
type Kernel struct {
	netns  int
	ifname string
	label  string
}

var _ Conn = (*Kernel)(nil)

// Option configures a Kernel.
type Option func(*Kernel)

// WithNetNS makes the Kernel work in the network namespace the open file
// descriptor fd refers to (tests use their own namespace).
func WithNetNS(fd int) Option { return func(k *Kernel) { k.netns = fd } }

// WithInterface puts VIPs on the named interface instead of lo.
func WithInterface(name string) Option { return func(k *Kernel) { k.ifname = name } }

// New returns a Kernel after checking that the VIP interface exists.
func New(opts ...Option) (*Kernel, error) {
	k := &Kernel{ifname: DefaultInterface}
	for _, o := range opts {
		o(k)
	}
	switch {
	case len(k.ifname)+len(":lbctl") < unix.IFNAMSIZ:
		k.label = k.ifname + ":lbctl"
	case len(k.ifname)+len(":lb") < unix.IFNAMSIZ:
		k.label = k.ifname + ":lb"
	default:
		return nil, fmt.Errorf("vip interface %q: name too long for an address label", k.ifname)
	}
	c, err := k.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := ifindex(c, k.ifname); err != nil {
		return nil, err
	}
	return k, nil
}

// Label is the label of lbctl's IPv4 VIP addresses.
func (k *Kernel) Label() string { return k.label }

func (k *Kernel) dial() (*rtnetlink.Conn, error) {
	c, err := rtnetlink.Dial(&mdnetlink.Config{NetNS: k.netns})
	if err != nil {
		return nil, fmt.Errorf("dial rtnetlink: %w", err)
	}
	return c, nil
}

func ifindex(c *rtnetlink.Conn, name string) (uint32, error) {
	links, err := c.Link.List()
	if err != nil {
		return 0, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Name == name {
			return l.Index, nil
		}
	}
	return 0, fmt.Errorf("interface %q not found", name)
}

// addr is one address on the VIP interface.
type addr struct {
	prefix netip.Prefix
	ours   bool
	msg    rtnetlink.AddressMessage
}

func (k *Kernel) addrs(c *rtnetlink.Conn, idx uint32) ([]addr, error) {
	msgs, err := c.Address.List()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []addr
	for _, m := range msgs {
		if m.Index != idx || m.Attributes == nil {
			continue
		}
		ip := m.Attributes.Local
		if ip == nil {
			ip = m.Attributes.Address
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		if m.Family == unix.AF_INET6 {
			a = netip.AddrFrom16(a.As16())
		}
		p := netip.PrefixFrom(a, int(m.PrefixLength))
		out = append(out, addr{prefix: p, ours: k.ours(m, p), msg: m})
	}
	return out, nil
}

// ours tells lbctl's VIP addresses from everyone else's (see the package
// documentation).
func (k *Kernel) ours(m rtnetlink.AddressMessage, p netip.Prefix) bool {
	if p.Bits() != p.Addr().BitLen() || m.Attributes.Flags&unix.IFA_F_NOPREFIXROUTE == 0 {
		return false
	}
	if p.Addr().Is4() {
		return m.Attributes.Label == k.label
	}
	return m.Attributes.Flags&unix.IFA_F_NODAD != 0
}

// ListVIPs lists lbctl's VIP addresses on the VIP interface.
func (k *Kernel) ListVIPs() ([]netip.Prefix, error) {
	c, err := k.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	idx, err := ifindex(c, k.ifname)
	if err != nil {
		return nil, err
	}
	as, err := k.addrs(c, idx)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range as {
		if a.ours {
			out = append(out, a.prefix)
		}
	}
	slices.SortFunc(out, netstate.ComparePrefix)
	return out, nil
}

// find returns the address equal to vip, if any.
func find(as []addr, vip netip.Prefix) (addr, bool) {
	for _, a := range as {
		if a.prefix.Addr() == vip.Addr() {
			return a, true
		}
	}
	return addr{}, false
}

// AddVIP adds vip with lbctl's mark; an lbctl VIP already there is left
// as is, a foreign address is an ErrForeign error.
func (k *Kernel) AddVIP(vip netip.Prefix) error {
	return k.withVIP(vip, func(c *rtnetlink.Conn, idx uint32, a addr, found bool) error {
		if found {
			if a.ours && a.prefix == vip {
				return nil
			}
			return fmt.Errorf("vip %s on %s: %w (%s)", vip, k.ifname, ErrForeign, a.prefix)
		}
		ip := net.IP(vip.Addr().AsSlice())
		m := &rtnetlink.AddressMessage{
			PrefixLength: uint8(vip.Bits()),
			Scope:        unix.RT_SCOPE_UNIVERSE,
			Index:        idx,
			Attributes:   &rtnetlink.AddressAttributes{Address: ip, Local: ip, Flags: unix.IFA_F_NOPREFIXROUTE},
		}
		if vip.Addr().Is4() {
			m.Family = unix.AF_INET
			m.Attributes.Label = k.label
		} else {
			m.Family = unix.AF_INET6
			m.Attributes.Flags |= unix.IFA_F_NODAD
		}
		if err := c.Address.New(m); err != nil {
			return fmt.Errorf("add vip %s to %s: %w", vip, k.ifname, err)
		}
		return nil
	})
}

// RemoveVIP removes an lbctl VIP; an absent address succeeds, a foreign one
// is an ErrForeign error and stays.
func (k *Kernel) RemoveVIP(vip netip.Prefix) error {
	return k.withVIP(vip, func(c *rtnetlink.Conn, _ uint32, a addr, found bool) error {
		if !found {
			return nil
		}
		if !a.ours {
			return fmt.Errorf("vip %s on %s: %w", vip, k.ifname, ErrForeign)
		}
		m := a.msg
		if err := c.Address.Delete(&m); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove vip %s from %s: %w", vip, k.ifname, err)
		}
		return nil
	})
}

// withVIP checks vip, connects, finds the VIP interface and the address
// of vip on it (found false when there is none) and calls f.
func (k *Kernel) withVIP(vip netip.Prefix, f func(c *rtnetlink.Conn, idx uint32, a addr, found bool) error) error {
	if err := checkVIP(vip); err != nil {
		return err
	}
	c, err := k.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	idx, err := ifindex(c, k.ifname)
	if err != nil {
		return err
	}
	as, err := k.addrs(c, idx)
	if err != nil {
		return err
	}
	a, found := find(as, vip)
	return f(c, idx, a, found)
}

// tproxyRule is the fwmark policy rule for one family.
func tproxyRule(family uint8) *rtnetlink.RuleMessage {
	prio, mark, mask, table := uint32(model.TProxyRulePrio), uint32(model.TProxyMark), uint32(0xffffffff), uint32(model.TProxyTable)
	return &rtnetlink.RuleMessage{
		Family: family,
		Table:  uint8(model.TProxyTable),
		Action: unix.FR_ACT_TO_TBL,
		Attributes: &rtnetlink.RuleAttributes{
			Priority: &prio, FwMark: &mark, FwMask: &mask, Table: &table,
		},
	}
}

// isTProxyRule matches the rule `ip rule` would list as
// "100: from all fwmark 0x1 lookup 100".
func isTProxyRule(r rtnetlink.RuleMessage) bool {
	a := r.Attributes
	if a == nil || r.Action != unix.FR_ACT_TO_TBL || r.SrcLength != 0 || r.DstLength != 0 {
		return false
	}
	table := uint32(r.Table)
	if a.Table != nil {
		table = *a.Table
	}
	return a.Priority != nil && *a.Priority == model.TProxyRulePrio &&
		a.FwMark != nil && *a.FwMark == model.TProxyMark &&
		(a.FwMask == nil || *a.FwMask == 0xffffffff) &&
		table == model.TProxyTable && a.IIFName == nil && a.OIFName == nil
}

// tproxyRoute is `local 0.0.0.0/0 dev lo table 100` (or ::/0).
func tproxyRoute(family uint8, lo uint32) *rtnetlink.RouteMessage {
	return &rtnetlink.RouteMessage{
		Family:     family,
		Table:      uint8(model.TProxyTable),
		Protocol:   unix.RTPROT_BOOT,
		Scope:      unix.RT_SCOPE_HOST,
		Type:       unix.RTN_LOCAL,
		Attributes: rtnetlink.RouteAttributes{Table: model.TProxyTable, OutIface: lo},
	}
}

func isTProxyRoute(r rtnetlink.RouteMessage, lo uint32) bool {
	table := uint32(r.Table)
	if r.Attributes.Table != 0 {
		table = r.Attributes.Table
	}
	return table == model.TProxyTable && r.Type == unix.RTN_LOCAL && r.DstLength == 0 &&
		r.Attributes.OutIface == lo && len(r.Attributes.Multipath) == 0
}

type tproxyObjects struct {
	lo     uint32
	rules  map[uint8][]rtnetlink.RuleMessage
	routes map[uint8][]rtnetlink.RouteMessage
}

func readTProxy(c *rtnetlink.Conn) (tproxyObjects, error) {
	o := tproxyObjects{rules: map[uint8][]rtnetlink.RuleMessage{}, routes: map[uint8][]rtnetlink.RouteMessage{}}
	lo, err := ifindex(c, tproxyInterface)
	if err != nil {
		return o, err
	}
	o.lo = lo
	rules, err := c.Rule.List()
	if err != nil {
		return o, fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		if isTProxyRule(r) {
			o.rules[r.Family] = append(o.rules[r.Family], r)
		}
	}
	routes, err := c.Route.List()
	if err != nil {
		return o, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if isTProxyRoute(r, lo) {
			o.routes[r.Family] = append(o.routes[r.Family], r)
		}
	}
	return o, nil
}

func (o tproxyObjects) parts() TProxyParts {
	return TProxyParts{
		Rule4: len(o.rules[unix.AF_INET]) > 0, Rule6: len(o.rules[unix.AF_INET6]) > 0,
		Route4: len(o.routes[unix.AF_INET]) > 0, Route6: len(o.routes[unix.AF_INET6]) > 0,
	}
}

// TProxy reports which TPROXY routing objects exist.
func (k *Kernel) TProxy() (TProxyParts, error) {
	c, err := k.dial()
	if err != nil {
		return TProxyParts{}, err
	}
	defer c.Close()
	o, err := readTProxy(c)
	if err != nil {
		return TProxyParts{}, err
	}
	return o.parts(), nil
}

// EnsureTProxy creates the missing TPROXY routing objects (on) or removes
// the existing ones (off). Routes go in before rules and come out after
// them, so a marked packet never hits a rule pointing at an empty table.
func (k *Kernel) EnsureTProxy(on bool) error {
	c, err := k.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	o, err := readTProxy(c)
	if err != nil {
		return err
	}
	var errs []error
	fams := []uint8{unix.AF_INET, unix.AF_INET6}
	if on {
		for _, f := range fams {
			if len(o.routes[f]) == 0 {
				if err := c.Route.Add(tproxyRoute(f, o.lo)); err != nil && !errors.Is(err, unix.EEXIST) {
					errs = append(errs, fmt.Errorf("add tproxy route (family %d): %w", f, err))
				}
			}
		}
		for _, f := range fams {
			if len(o.rules[f]) == 0 {
				if err := c.Rule.Add(tproxyRule(f)); err != nil && !errors.Is(err, unix.EEXIST) {
					errs = append(errs, fmt.Errorf("add tproxy rule (family %d): %w", f, err))
				}
			}
		}
		return errors.Join(errs...)
	}
	for _, f := range fams {
		for _, r := range o.rules[f] {
			if err := c.Rule.Delete(&r); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove tproxy rule (family %d): %w", f, err))
			}
		}
	}
	for _, f := range fams {
		for _, r := range o.routes[f] {
			if err := c.Route.Delete(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("remove tproxy route (family %d): %w", f, err))
			}
		}
	}
	return errors.Join(errs...)
}
