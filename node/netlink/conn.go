package netlink

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
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

// Read returns the observed State.
func Read(c Conn) (State, error) {
	vips, err := c.ListVIPs()
	if err != nil {
		return State{}, err
	}
	tp, err := c.TProxy()
	if err != nil {
		return State{}, err
	}
	return State{VIPs: vips, TProxy: tp.All(), TProxyPartial: tp.Any() && !tp.All()}, nil
}

// Sync reads the kernel, plans and runs the operations that make it match
// desired. VIP operations are independent: all are tried and their errors
// joined. It returns the operations that succeeded, so that the state
// reached is known after a partial failure.
func Sync(c Conn, desired State) ([]Op, error) {
	for _, p := range desired.VIPs {
		if err := checkVIP(p); err != nil {
			return nil, err
		}
	}
	observed, err := Read(c)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var done []Op
	var errs []error
	for _, op := range Plan(desired, observed) {
		var err error
		switch op.Kind {
		case TProxyOn:
			err = c.EnsureTProxy(true)
		case TProxyOff:
			err = c.EnsureTProxy(false)
		case AddVIP:
			err = c.AddVIP(op.VIP)
		case RemoveVIP:
			err = c.RemoveVIP(op.VIP)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", op, err))
			// VIPs that need TPROXY routing must not appear without it.
			if op.Kind == TProxyOn {
				break
			}
			continue
		}
		done = append(done, op)
	}
	return slices.Clip(done), errors.Join(errs...)
}
