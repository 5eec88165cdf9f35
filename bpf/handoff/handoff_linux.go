package handoff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
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
	mu     sync.Mutex
	objs   handoffObjects
	pinDir string               // bpffs directory of the maps and links; "" when not pinned
	links  map[string]link.Link // by "uplink/IFNAME" or "tunnel/IFNAME"
	// stale are adopted links that still run the program of the process
	// that attached them: Apply moves them to this one's, atomically.
	stale map[string]bool
	// repin: the pinned maps had another layout (an upgrade changed
	// them); this process's own maps replace their pins once Apply has
	// filled them and moved the links.
	repin bool
	cfg   handoffHoffConfig
	// synced holds, per set map, the keys the last successful syncSet
	// left in it (a map[K]bool): applying the same set again (the
	// agent's refresh every 10 s) then costs no system call, where a
	// full sync put and listed every key (3,000 bpf calls at 500 VIPs).
	synced map[*ebpf.Map]any
}

// Load loads the committed eBPF objects, not pinned: closing the Datapath
// detaches the programs. Nothing is attached and no peer is configured
// until Apply.
//
// The returned error wraps ErrNotSupported when the kernel or the
// privileges cannot run the programs.
func Load() (*Datapath, error) { return LoadPinned("") }

// LoadPinned loads the eBPF objects with their maps and links pinned in dir,
// a directory on a bpf file system (DefaultPinDir on a node; created if
// missing): the programs keep forwarding after Close and after the process
// exits. What an earlier process pinned there is adopted: its maps, with
// their entries and counters, when their layout is this program's, and its
// links, which keep running the earlier program until Apply replaces it
// with this one in place (bpf_link update: no packet goes without a
// program). Maps of another layout stay pinned for the earlier program
// until Apply has filled this process's maps and moved the links to them.
// Remove deletes the pins.
//
// An error wraps ErrNotPinnable when dir is not on a bpf file system, and
// ErrNotSupported as for Load.
func LoadPinned(dir string) (*Datapath, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify("remove memlock limit", err)
	}
	d := &Datapath{links: map[string]link.Link{}, stale: map[string]bool{}, pinDir: dir}
	if dir == "" {
		if err := loadHandoffObjects(&d.objs, nil); err != nil {
			return nil, classify("load flow handoff programs", err)
		}
		return d, nil
	}
	if err := preparePinDir(dir); err != nil {
		return nil, err
	}
	if err := d.loadPinnedObjects(); err != nil {
		return nil, err
	}
	if err := d.adoptLinks(); err != nil {
		d.objs.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the process's handles. Without pins this detaches the
// programs and frees the maps; with pins (LoadPinned) the programs keep
// forwarding with the maps as they are. The VXLAN device stays (it is
// harmless without the programs); RemoveDevice deletes it.
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

// key is the map key of an IPv4 VIP or backend address and port, in
// network byte order as the program reads them from the packet.
func key(ap netip.AddrPort) handoffHoffKey {
	a := ap.Addr().As4()
	return handoffHoffKey{Addr: binary.NativeEndian.Uint32(a[:]), Port: netPort(ap.Port())}
}

// key6 is key for IPv6.
func key6(ap netip.AddrPort) handoffHoffKey6 {
	return handoffHoffKey6{Addr: ap.Addr().As16(), Port: netPort(ap.Port())}
}

// netPort is a port in network byte order, read as the host reads memory.
func netPort(port uint16) uint16 {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], port)
	return binary.NativeEndian.Uint16(p[:])
}

// hostOrder is an IPv4 address as bpf_tunnel_key wants it.
func hostOrder(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// syncCached is syncSet unless the last successful sync of m left
// exactly want's keys in it: then nothing changed and nothing is done.
// Only this process writes the maps once it runs (an earlier process's
// keys are dealt with by the first, full sync).
func syncCached[K comparable](d *Datapath, m *ebpf.Map, want []K) error {
	set := make(map[K]bool, len(want))
	for _, k := range want {
		set[k] = true
	}
	if last, ok := d.synced[m].(map[K]bool); ok && maps.Equal(last, set) {
		return nil
	}
	delete(d.synced, m)
	if err := syncSet(m, want); err != nil {
		return err
	}
	if d.synced == nil {
		d.synced = map[*ebpf.Map]any{}
	}
	d.synced[m] = set
	return nil
}

// syncSet makes the hash map m hold exactly the keys of want: it adds them,
// then deletes every other key it finds in the map (which may hold what an
// earlier process put there).
func syncSet[K comparable](m *ebpf.Map, want []K) error {
	var errs []error
	keep := make(map[K]bool, len(want))
	one := uint8(1)
	for _, k := range want {
		keep[k] = true
		if err := m.Put(k, one); err != nil {
			errs = append(errs, fmt.Errorf("add %v: %w", k, err))
		}
	}
	var (
		k     K
		v     uint8
		extra []K
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !keep[k] {
			extra = append(extra, k)
		}
	}
	if err := it.Err(); err != nil {
		errs = append(errs, fmt.Errorf("list entries: %w", err))
	}
	for _, k := range extra {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("remove %v: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// byFamily splits aps into the IPv4 and the IPv6 map keys, without
// duplicates.
func byFamily(aps []netip.AddrPort) (k4 []handoffHoffKey, k6 []handoffHoffKey6) {
	for _, ap := range aps {
		a := ap.Addr().Unmap()
		if a.Is4() {
			k4 = append(k4, key(netip.AddrPortFrom(a, ap.Port())))
		} else if a.Is6() {
			k6 = append(k6, key6(netip.AddrPortFrom(a.WithZone(""), ap.Port())))
		}
	}
	return k4, k6
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
