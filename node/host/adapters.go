package host

import (
	"errors"
	"net/netip"

	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/node/netlink/netstate"
)

// Netlink adapts a node/netlink connection to Addresses.
type Netlink struct {
	Conn netlink.Conn
}

// AddVIPs adds host prefixes for the addresses; all are tried.
func (n Netlink) AddVIPs(addrs []netip.Addr) error {
	var errs []error
	for _, a := range addrs {
		errs = append(errs, n.Conn.AddVIP(netstate.HostPrefix(a)))
	}
	return errors.Join(errs...)
}

// RemoveVIPs removes the addresses' host prefixes; all are tried.
func (n Netlink) RemoveVIPs(addrs []netip.Addr) error {
	var errs []error
	for _, a := range addrs {
		errs = append(errs, n.Conn.RemoveVIP(netstate.HostPrefix(a)))
	}
	return errors.Join(errs...)
}

// SetTProxy turns the TPROXY policy routing on or off.
func (n Netlink) SetTProxy(on bool) error { return n.Conn.EnsureTProxy(on) }
