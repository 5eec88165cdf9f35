package handoff

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Defaults of the handoff device.
const (
	DefaultDevice = "lbh0"
	DefaultPort   = 4789   // VXLAN's IANA port
	DefaultVNI    = 0x6c62 // "lb"
	// DefaultPinDir is where a node pins the maps and links (a bpf file
	// system; systemd mounts one on /sys/fs/bpf).
	DefaultPinDir = "/sys/fs/bpf/lbctl/handoff"
)

// DeviceMAC is the MAC address of the handoff device on every node. Inner
// frames are addressed to it, so a node needs to know nothing of its peers'
// devices; the program uses this address with the last bit flipped as the
// inner source (VXLAN drops frames from its own address).
var DeviceMAC = net.HardwareAddr{0x02, 0x6c, 0x62, 0x68, 0x00, 0x01}

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
	// Peers are the other LB nodes of the site, IPv4, at most MaxPeers:
	// the outer packets are IPv4 whatever the family of the packet they
	// carry.
	Peers []netip.Addr
	// VIPs are the local VIP address:ports; Backends the servers of
	// transparent VIPs, whose replies are handed off too. Both IPv4 and
	// IPv6.
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

// Counters are the datapath's packet counters, summed over CPUs.
type Counters struct {
	Forwarded     uint64 `json:"forwarded"`      // copies sent to a peer
	ForwardErrors uint64 `json:"forward_errors"` // copies the kernel refused to send
	NoPeer        uint64 `json:"no_peer"`        // packets that had no owner and no peer to try: passed on
	Delivered     uint64 `json:"delivered"`      // copies from a peer that a local socket owned
	Dropped       uint64 `json:"dropped"`        // copies from a peer that no local socket owned
	Refused       uint64 `json:"refused"`        // packets from the tunnel that were not VIP or backend traffic
}
