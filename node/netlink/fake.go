package netlink

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/lbctl/lbctl/node/netlink/netstate"
)

// Fake is an in-memory Conn with the Kernel's semantics: it keeps lbctl's
// VIPs and the TPROXY routing objects, refuses foreign addresses and
// non-host prefixes, and prints its state for diffs.
type Fake struct {
	mu   sync.Mutex
	vips map[netip.Prefix]bool
	tp   TProxyParts
	// Foreign are addresses on the interface that lbctl did not add.
	Foreign []netip.Prefix
	// Fail, if set, is consulted before every change; a non-nil result
	// fails the operation without changing anything.
	Fail func(op netstate.Op) error
}

var _ Conn = (*Fake)(nil)

func (f *Fake) foreign(vip netip.Prefix) bool {
	return slices.ContainsFunc(f.Foreign, func(p netip.Prefix) bool { return p.Addr() == vip.Addr() })
}

func (f *Fake) fail(op netstate.Op) error {
	if f.Fail != nil {
		return f.Fail(op)
	}
	return nil
}

// AddVIP adds vip.
func (f *Fake) AddVIP(vip netip.Prefix) error {
	return f.change(netstate.Op{Kind: netstate.AddVIP, VIP: vip}, func() {
		if f.vips == nil {
			f.vips = map[netip.Prefix]bool{}
		}
		f.vips[vip] = true
	})
}

// RemoveVIP removes vip.
func (f *Fake) RemoveVIP(vip netip.Prefix) error {
	return f.change(netstate.Op{Kind: netstate.RemoveVIP, VIP: vip}, func() { delete(f.vips, vip) })
}

// change refuses what the kernel would (not a host prefix, a foreign
// address) and what Fail fails, and otherwise runs do with the lock held.
func (f *Fake) change(op netstate.Op, do func()) error {
	if err := checkVIP(op.VIP); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.foreign(op.VIP) {
		return fmt.Errorf("vip %s: %w", op.VIP, ErrForeign)
	}
	if err := f.fail(op); err != nil {
		return err
	}
	do()
	return nil
}

// ListVIPs lists the VIPs, sorted.
func (f *Fake) ListVIPs() ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return netstate.SortedPrefixes(f.vips), nil
}

// TProxy reports the TPROXY routing objects.
func (f *Fake) TProxy() (TProxyParts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tp, nil
}

// SetTProxyParts sets the routing objects directly (to model a half-done
// state left by someone else).
func (f *Fake) SetTProxyParts(p TProxyParts) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tp = p
}

// EnsureTProxy turns the TPROXY routing on or off.
func (f *Fake) EnsureTProxy(on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := netstate.TProxyOff
	if on {
		kind = netstate.TProxyOn
	}
	if err := f.fail(netstate.Op{Kind: kind}); err != nil {
		return err
	}
	f.tp = TProxyParts{Rule4: on, Rule6: on, Route4: on, Route6: on}
	return nil
}

// String prints the state: one "vip P" line per VIP, then the TPROXY
// routing objects that exist.
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, p := range netstate.SortedPrefixes(f.vips) {
		fmt.Fprintf(&b, "vip %s\n", p)
	}
	for _, x := range []struct {
		on   bool
		text string
	}{
		{f.tp.Rule4, "rule4 fwmark 0x1 lookup 100 priority 100"},
		{f.tp.Rule6, "rule6 fwmark 0x1 lookup 100 priority 100"},
		{f.tp.Route4, "route4 local 0.0.0.0/0 dev lo table 100"},
		{f.tp.Route6, "route6 local ::/0 dev lo table 100"},
	} {
		if x.on {
			b.WriteString(x.text + "\n")
		}
	}
	return b.String()
}
