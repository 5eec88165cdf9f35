package handoff

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// MaxPeers is the number of peer nodes a node can hand packets to.
const MaxPeers = 8

// Config is what one node's datapath does.
type Config struct {
	// NetNS is an open network namespace to work in (tests, the sandbox);
	// 0 means the calling process's namespace.
	NetNS int
	// Uplinks are the interfaces where VIP traffic and backend replies
	// arrive: handoff_uplink runs at their tc ingress.
	Uplinks []string
	// Device, Port and VNI name the VXLAN device (defaults DefaultDevice,
	// DefaultPort, DefaultVNI); the same on every node of a site.
	Device string
	Port   uint16
	VNI    uint32
	// Local is this node's address towards its peers (the outer source of
	// forwarded packets, which the peers' nftables admit); unset: the
	// kernel's route source.
	Local netip.Addr
	// Peers are the other LB nodes of the site, IPv4, at most MaxPeers.
	Peers []netip.Addr
	// VIPs are the local VIP address:ports; Backends the servers of
	// transparent VIPs, whose replies are handed off too. IPv6 entries are
	// ignored: the datapath hands off IPv4 only.
	VIPs     []netip.AddrPort
	Backends []netip.AddrPort
}

func (c *Config) defaults() {
	if c.Device == "" {
		c.Device = DefaultDevice
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.VNI == 0 {
		c.VNI = DefaultVNI
	}
}

// Validate checks the configuration without touching the kernel.
func (c Config) Validate() error {
	var errs []error
	if len(c.Peers) > MaxPeers {
		errs = append(errs, fmt.Errorf("flow handoff: %d peers, at most %d", len(c.Peers), MaxPeers))
	}
	for _, p := range c.Peers {
		if !p.Unmap().Is4() {
			errs = append(errs, fmt.Errorf("flow handoff: peer %s is not IPv4", p))
		}
	}
	if c.Local.IsValid() && !c.Local.Unmap().Is4() {
		errs = append(errs, fmt.Errorf("flow handoff: local address %s is not IPv4", c.Local))
	}
	if c.VNI >= 1<<24 {
		errs = append(errs, fmt.Errorf("flow handoff: vni %d does not fit 24 bits", c.VNI))
	}
	return errors.Join(errs...)
}

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
		tun, err := ensureDevice(cfg.Device, cfg.Port, cfg.Local)
		if err != nil {
			return err
		}
		want := map[string]int{"tunnel/" + cfg.Device: tun}
		for _, up := range cfg.Uplinks {
			idx, err := ifaceIndex(up)
			if err != nil {
				return err
			}
			want["uplink/"+up] = idx
		}
		// Load the maps first so that the programs never run with a half
		// configuration.
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
		vips, backs := v4(cfg.VIPs), v4(cfg.Backends)
		if err := syncSet(d.objs.HoffVips, d.vips, vips); err != nil {
			errs = append(errs, fmt.Errorf("flow handoff vips: %w", err))
		}
		d.vips = vips
		if err := syncSet(d.objs.HoffBackends, d.backs, backs); err != nil {
			errs = append(errs, fmt.Errorf("flow handoff backends: %w", err))
		}
		d.backs = backs
		if err := d.objs.HoffCfg.Put(uint32(0), hc); err != nil {
			errs = append(errs, fmt.Errorf("flow handoff config: %w", err))
		}
		d.cfg = hc
		for name, idx := range want {
			if _, ok := d.links[name]; ok {
				continue
			}
			prog := d.objs.HandoffUplink
			if name == "tunnel/"+cfg.Device {
				prog = d.objs.HandoffTunnel
			}
			l, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: prog, Attach: ebpf.AttachTCXIngress})
			if err != nil {
				errs = append(errs, classify("attach", fmt.Errorf("attach %s: %w", name, err)))
				continue
			}
			d.links[name] = l
		}
		for _, name := range slices.Sorted(maps.Keys(d.links)) {
			if _, ok := want[name]; ok {
				continue
			}
			if err := d.links[name].Close(); err != nil {
				errs = append(errs, fmt.Errorf("detach %s: %w", name, err))
				continue
			}
			delete(d.links, name)
		}
		return errors.Join(errs...)
	})
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

// inNetNS runs fn on an OS thread in the network namespace open at fd (0:
// the calling thread's, no switch). The thread goes back afterwards; if that
// fails it stays locked and the runtime discards it.
func inNetNS(fd int, fn func() error) error {
	if fd <= 0 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace fd %d: %w", fd, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return to own network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
