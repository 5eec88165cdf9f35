package bpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TCP states that still carry a client's data (linux/tcp_states.h).
const connStates = 1<<1 | 1<<4 | 1<<5 | 1<<8 // ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT

// OpenConnections counts, per local address:port in locals, the TCP
// connections of the calling process's network namespace that are open
// (established or closing but still able to receive), through
// NETLINK_SOCK_DIAG. A drain uses it to say how many connections a VIP
// still serves.
func OpenConnections(locals []netip.AddrPort) (map[netip.AddrPort]int, error) {
	want := map[netip.AddrPort]bool{}
	for _, l := range locals {
		want[netip.AddrPortFrom(l.Addr().Unmap(), l.Port())] = true
	}
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, nil)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: dial: %w", err)
	}
	defer c.Close()
	out := map[netip.AddrPort]int{}
	for _, family := range []uint8{afInet, afInet6} {
		req := make([]byte, inetDiagReqV2Size)
		req[0], req[1] = family, unix.IPPROTO_TCP
		binary.NativeEndian.PutUint32(req[4:], connStates)
		msgs, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: unix.SOCK_DIAG_BY_FAMILY, Flags: netlink.Request | netlink.Dump},
			Data:   req,
		})
		if err != nil {
			return nil, fmt.Errorf("sock_diag: dump family %d: %w", family, err)
		}
		for _, m := range msgs {
			b := m.Data
			if len(b) < inetDiagMsgSize {
				continue
			}
			var addr [16]byte
			copy(addr[:], b[8:24])
			ap, ok := addrFrom(uint16(b[0]), addr, binary.BigEndian.Uint16(b[4:6]))
			if !ok {
				continue
			}
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			if want[ap] {
				out[ap]++
			}
		}
	}
	return out, nil
}
