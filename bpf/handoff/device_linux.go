package handoff

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// VXLAN link attributes (linux/if_link.h).
const (
	iflaVxlanLearning        = 7
	iflaVxlanPort            = 15
	iflaVxlanCollectMetadata = 25
)

// vxlan is the rtnetlink driver data of a collect_md ("external") VXLAN
// device: the programs set the remote per packet.
type vxlan struct{ port uint16 }

func (v *vxlan) New() rtnetlink.LinkDriver { return &vxlan{} }
func (v *vxlan) Kind() string              { return "vxlan" }
func (v *vxlan) Decode(*netlink.AttributeDecoder) error {
	return nil
}
func (v *vxlan) Encode(ae *netlink.AttributeEncoder) error {
	ae.Uint8(iflaVxlanCollectMetadata, 1)
	ae.Uint8(iflaVxlanLearning, 0)
	ae.Bytes(iflaVxlanPort, []byte{byte(v.port >> 8), byte(v.port)})
	return nil
}

// ensureDevice creates the handoff device in the calling thread's network
// namespace if it is missing, brings it up and turns its reverse-path filter
// off (decapsulated packets come from clients whose route leaves through an
// uplink). When local is valid it is also put on the device as a /32: the
// kernel rejects packets on a device without an IPv4 address whenever
// net.ipv4.conf.all.rp_filter is on, loose mode included. It returns the
// device's index.
func ensureDevice(name string, port uint16, local netip.Addr) (int, error) {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return 0, fmt.Errorf("dial rtnetlink: %w", err)
	}
	defer c.Close()
	idx, err := linkIndex(c, name)
	if err != nil {
		return 0, err
	}
	if idx == 0 {
		err := c.Link.New(&rtnetlink.LinkMessage{
			Family: unix.AF_UNSPEC,
			Attributes: &rtnetlink.LinkAttributes{
				Name:    name,
				Address: DeviceMAC,
				Info:    &rtnetlink.LinkInfo{Kind: "vxlan", Data: &vxlan{port: port}},
			},
		})
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("create %s: %w: the kernel has no VXLAN driver: %w", name, ErrNotSupported, err)
		}
		if err != nil {
			return 0, classify("create "+name, err)
		}
		if idx, err = linkIndex(c, name); err != nil {
			return 0, err
		}
		if idx == 0 {
			return 0, fmt.Errorf("create %s: not found after creating it", name)
		}
	}
	if err := c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(idx), Flags: unix.IFF_UP, Change: unix.IFF_UP}); err != nil {
		return 0, fmt.Errorf("set %s up: %w", name, err)
	}
	// Best effort: a hardened unit (ProtectKernelTunables=) cannot write
	// sysctls; the address below keeps loose mode working there.
	_ = os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/rp_filter", []byte("0"), 0)
	if local.IsValid() {
		if err := ensureAddr(c, idx, local.Unmap()); err != nil {
			return 0, fmt.Errorf("address %s on %s: %w", local, name, err)
		}
	}
	return idx, nil
}

func ensureAddr(c *rtnetlink.Conn, idx int, a netip.Addr) error {
	msgs, err := c.Address.List()
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, m := range msgs {
		if m.Index == uint32(idx) && m.Attributes != nil && m.Attributes.Address.Equal(a.AsSlice()) {
			return nil
		}
	}
	return c.Address.New(&rtnetlink.AddressMessage{
		Family:       unix.AF_INET,
		PrefixLength: 32,
		Scope:        unix.RT_SCOPE_HOST,
		Index:        uint32(idx),
		Attributes:   &rtnetlink.AddressAttributes{Address: a.AsSlice(), Local: a.AsSlice()},
	})
}

// removeDevice deletes the handoff device if it exists.
func removeDevice(name string) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return fmt.Errorf("dial rtnetlink: %w", err)
	}
	defer c.Close()
	idx, err := linkIndex(c, name)
	if err != nil || idx == 0 {
		return err
	}
	if err := c.Link.Delete(uint32(idx)); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// linkIndex returns the index of the named link, 0 if there is none.
func linkIndex(c *rtnetlink.Conn, name string) (int, error) {
	links, err := c.Link.List()
	if err != nil {
		return 0, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Name == name {
			return int(l.Index), nil
		}
	}
	return 0, nil
}
