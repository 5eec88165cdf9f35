package handoff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Datapath holds one node's loaded handoff programs and maps. It is safe for
// concurrent use.
type Datapath struct {
	mu    sync.Mutex
	objs  handoffObjects
	links map[string]link.Link // by "uplink/IFNAME" or "tunnel/IFNAME"
	cfg   handoffHoffConfig
	vips  []netip.AddrPort
	backs []netip.AddrPort
}

// Load loads the committed eBPF objects. Nothing is attached and no peer is
// configured until Apply.
//
// The returned error wraps ErrNotSupported when the kernel or the privileges
// cannot run the programs.
func Load() (*Datapath, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify("remove memlock limit", err)
	}
	d := &Datapath{links: map[string]link.Link{}}
	if err := loadHandoffObjects(&d.objs, nil); err != nil {
		return nil, classify("load flow handoff programs", err)
	}
	return d, nil
}

// Close detaches the programs and frees the maps. The VXLAN device stays (it
// is harmless without the programs); RemoveDevice deletes it.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for name, l := range d.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", name, err))
		}
		delete(d.links, name)
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close flow handoff objects: %w", err))
	}
	return errors.Join(errs...)
}

// classify wraps err with ErrNotSupported when it means the kernel or the
// privileges cannot run the programs (as opposed to a transient failure).
func classify(what string, err error) error {
	var verr *ebpf.VerifierError
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s: %w: needs CAP_BPF and CAP_NET_ADMIN: %w", what, ErrNotSupported, err)
	case errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.ENOSYS) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) && what == "attach" ||
		errors.Is(err, btf.ErrNotFound) || errors.Is(err, btf.ErrNotSupported) ||
		errors.As(err, &verr):
		return fmt.Errorf("%s: %w: %w", what, ErrNotSupported, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// key is the map key of a VIP or backend address and port, in network byte
// order as the program reads them from the packet.
func key(ap netip.AddrPort) handoffHoffKey {
	a := ap.Addr().As4()
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], ap.Port())
	return handoffHoffKey{Addr: binary.NativeEndian.Uint32(a[:]), Port: binary.NativeEndian.Uint16(p[:])}
}

// hostOrder is an IPv4 address as bpf_tunnel_key wants it.
func hostOrder(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// syncSet makes the hash map m hold exactly want (old is what it holds now).
func syncSet(m *ebpf.Map, old, want []netip.AddrPort) error {
	var errs []error
	one := uint8(1)
	for _, ap := range want {
		if err := m.Put(key(ap), one); err != nil {
			errs = append(errs, fmt.Errorf("add %s: %w", ap, err))
		}
	}
	for _, ap := range old {
		if slices.Contains(want, ap) {
			continue
		}
		if err := m.Delete(key(ap)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", ap, err))
		}
	}
	return errors.Join(errs...)
}

// v4 keeps the IPv4 entries: the datapath hands off IPv4 only.
func v4(aps []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ap := range aps {
		if ap.Addr().Unmap().Is4() {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return slices.Compact(out)
}

// Counters reads the packet counters.
func (d *Datapath) Counters() (Counters, error) {
	var c Counters
	fields := []*uint64{&c.Forwarded, &c.ForwardErrors, &c.NoPeer, &c.Delivered, &c.Dropped, &c.Refused}
	for i, f := range fields {
		var per []uint64
		if err := d.objs.HoffStats.Lookup(uint32(i), &per); err != nil {
			return Counters{}, fmt.Errorf("read flow handoff counter %d: %w", i, err)
		}
		for _, v := range per {
			*f += v
		}
	}
	return c, nil
}
