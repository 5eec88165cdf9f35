package handoff

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/internal/netns"
)

// Apply makes the datapath match cfg: creates the VXLAN device, attaches
// handoff_tunnel to it and handoff_uplink to each uplink (detaching it from
// interfaces no longer listed), and loads peers, VIPs and backends into the
// maps. Applying the same configuration twice changes nothing.
func (d *Datapath) Apply(cfg Config) error {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return inNetNS(cfg.NetNS, func() error {
		tun, want, err := devices(&cfg)
		if err != nil {
			return err
		}
		// Load the maps first so that the programs never run with a half
		// configuration.
		errs := d.loadMaps(cfg, tun)
		errs = append(errs, d.syncLinks(cfg, want)...)
		if len(errs) == 0 && d.repin {
			// Every link runs this process's program now: its maps
			// replace the earlier layout's pins.
			if err := d.pinMaps(); err != nil {
				return err
			}
			d.repin = false
		}
		return errors.Join(errs...)
	})
}

// devices creates the VXLAN device and returns its index and the
// attachments cfg asks for ("tunnel/DEV" and "uplink/IFNAME" to interface
// index). It fills in cfg's local address and uplinks when unset.
func devices(cfg *Config) (tun int, want map[string]int, err error) {
	if !cfg.Local.IsValid() && len(cfg.Peers) > 0 {
		local, err := routeSource(cfg.Peers[0])
		if err != nil {
			return 0, nil, err
		}
		cfg.Local = local
	}
	tun, err = ensureDevice(cfg.Device, cfg.Port, cfg.Local)
	if err != nil {
		return 0, nil, err
	}
	if cfg.Uplinks == nil {
		if cfg.Uplinks, err = uplinks(cfg.Device); err != nil {
			return 0, nil, err
		}
	}
	want = map[string]int{"tunnel/" + cfg.Device: tun}
	for _, up := range cfg.Uplinks {
		idx, err := ifaceIndex(up)
		if err != nil {
			return 0, nil, err
		}
		want["uplink/"+up] = idx
	}
	return tun, want, nil
}

// loadMaps loads peers, VIPs, backends and the configuration into the
// maps; every map is tried.
func (d *Datapath) loadMaps(cfg Config, tun int) []error {
	hc := handoffHoffConfig{TunnelIfindex: uint32(tun), Vni: cfg.VNI}
	if cfg.Local.IsValid() {
		hc.Local = hostOrder(cfg.Local.Unmap())
	}
	for i, p := range cfg.Peers {
		hc.Peers[i] = hostOrder(p.Unmap())
	}
	hc.Npeers = uint32(len(cfg.Peers))
	copy(hc.TunnelMac[:], DeviceMAC)
	var errs []error
	vips4, vips6 := byFamily(cfg.VIPs)
	backs4, backs6 := byFamily(cfg.Backends)
	for _, s := range []struct {
		what string
		err  error
	}{
		{"vips", syncCached(d, d.objs.HoffVips, vips4)},
		{"vips6", syncCached(d, d.objs.HoffVips6, vips6)},
		{"backends", syncCached(d, d.objs.HoffBackends, backs4)},
		{"backends6", syncCached(d, d.objs.HoffBackends6, backs6)},
	} {
		if s.err != nil {
			errs = append(errs, fmt.Errorf("flow handoff %s: %w", s.what, s.err))
		}
	}
	if err := d.objs.HoffCfg.Put(uint32(0), hc); err != nil {
		errs = append(errs, fmt.Errorf("flow handoff config: %w", err))
	}
	d.cfg = hc
	return errs
}

// syncLinks attaches handoff_tunnel and handoff_uplink where want says (and
// pins the new links), moves adopted links still running an earlier
// program to this one, and detaches them from interfaces no longer listed.
func (d *Datapath) syncLinks(cfg Config, want map[string]int) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(want)) {
		idx := want[name]
		prog := d.objs.HandoffUplink
		if name == "tunnel/"+cfg.Device {
			prog = d.objs.HandoffTunnel
		}
		if l, ok := d.links[name]; ok {
			if linkIfindex(l) == idx {
				if d.stale[name] {
					if err := l.Update(prog); err != nil {
						errs = append(errs, fmt.Errorf("replace the program of %s: %w", name, err))
						continue
					}
					delete(d.stale, name)
				}
				continue
			}
			// The interface was deleted or replaced: the link is defunct.
			if err := d.dropLink(name); err != nil {
				errs = append(errs, err)
			}
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: prog, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			errs = append(errs, classify("attach", fmt.Errorf("attach %s: %w", name, err)))
			continue
		}
		d.links[name] = l
		if d.pinDir != "" {
			if err := l.Pin(linkPin(d.pinDir, name)); err != nil {
				errs = append(errs, fmt.Errorf("pin %s: %w", name, err))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.links)) {
		if _, ok := want[name]; ok {
			continue
		}
		if err := d.dropLink(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Attached lists the attachments, as "uplink/IFNAME" and "tunnel/IFNAME".
func (d *Datapath) Attached() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.links))
}

// RemoveDevice deletes the handoff device in the network namespace open at
// netns (0: the process's).
func RemoveDevice(netns int, name string) error {
	if name == "" {
		name = DefaultDevice
	}
	return inNetNS(netns, func() error { return removeDevice(name) })
}

// routeSource is the address the kernel would send from to peer: the
// outer source of forwarded packets, which the peer's packet filter admits.
func routeSource(peer netip.Addr) (netip.Addr, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: DefaultPort, Addr: peer.Unmap().As4()}); err != nil {
		return netip.Addr{}, fmt.Errorf("flow handoff: no route to peer %s: %w", peer, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return netip.Addr{}, fmt.Errorf("flow handoff: source towards %s is not IPv4", peer)
	}
	return netip.AddrFrom4(in4.Addr), nil
}

// uplinks are the interfaces of the calling thread's namespace where VIP
// traffic or backend replies may arrive: every one but loopback and the
// handoff device. The program lets everything else through, so an
// interface without VIP traffic costs one parse per packet.
func uplinks(device string) ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := []string{}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 || ifi.Name == device {
			continue
		}
		out = append(out, ifi.Name)
	}
	return out, nil
}

// ifaceIndex resolves an interface name in the calling thread's network
// namespace (SIOCGIFINDEX on a socket made there: /sys may be the host's).
func ifaceIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("uplink %q: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// inNetNS runs fn in the network namespace open at fd, or in the
// caller's own on a locked thread when fd <= 0 (netns.Do).
func inNetNS(fd int, fn func() error) error { return netns.Do(fd, fn) }
