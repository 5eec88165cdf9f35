package netlink

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/lbctl/lbctl/node/netlink/netstate"
)

// Errors callers can test with errors.Is.
var (
	// ErrForeign: the address is on the interface but was not added by
	// lbctl; it is left alone.
	ErrForeign = errors.New("address exists but is not lbctl's")
	// ErrNotHostPrefix: a VIP must be a /32 or /128 without a zone.
	ErrNotHostPrefix = errors.New("not a host prefix")
)

// Conn manages VIP addresses and TPROXY routing. Every method is
// idempotent: adding what exists or removing what is absent succeeds.
type Conn interface {
	// AddVIP adds a host prefix to the VIP interface.
	AddVIP(vip netip.Prefix) error
	// RemoveVIP removes a VIP lbctl added.
	RemoveVIP(vip netip.Prefix) error
	// ListVIPs lists lbctl's VIPs on the VIP interface, sorted.
	ListVIPs() ([]netip.Prefix, error)
	// TProxy reports which TPROXY routing objects exist.
	TProxy() (TProxyParts, error)
	// EnsureTProxy creates (on) or removes (off) the TPROXY routing.
	EnsureTProxy(on bool) error
}

// TProxyParts says which of the four TPROXY routing objects exist.
type TProxyParts struct {
	Rule4, Rule6, Route4, Route6 bool
}

// All reports whether all four exist.
func (p TProxyParts) All() bool { return p.Rule4 && p.Rule6 && p.Route4 && p.Route6 }

// Any reports whether at least one exists.
func (p TProxyParts) Any() bool { return p.Rule4 || p.Rule6 || p.Route4 || p.Route6 }

// Read returns the observed state.
func Read(c Conn) (netstate.State, error) {
	vips, err := c.ListVIPs()
	if err != nil {
		return netstate.State{}, err
	}
	tp, err := c.TProxy()
	if err != nil {
		return netstate.State{}, err
	}
	return netstate.State{VIPs: vips, TProxy: tp.All(), TProxyPartial: tp.Any() && !tp.All()}, nil
}

// checkVIP refuses anything but a host prefix without a zone.
func checkVIP(p netip.Prefix) error {
	if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() || p.Bits() != p.Addr().BitLen() {
		return fmt.Errorf("vip %s: %w", p, ErrNotHostPrefix)
	}
	return nil
}
