package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// SockDiag lists listeners through NETLINK_SOCK_DIAG (inet_diag), the
// fallback when eBPF is not available. The zero value is ready to use; each
// call opens one netlink socket in the target namespace and dumps IPv4 and
// IPv6 TCP listeners. It needs no privileges in the caller's own namespace
// (CAP_SYS_ADMIN to enter another one).
type SockDiag struct{}

var _ Lister = SockDiag{}

const (
	inetDiagReqV2Size = 56 // struct inet_diag_req_v2
	inetDiagMsgSize   = 72 // struct inet_diag_msg
)

// Listeners implements Lister. For listening sockets the kernel reports the
// accept queue in idiag_rqueue and its limit in idiag_wqueue; NetNS is the
// inode of the namespace the query ran in.
func (SockDiag) Listeners(netnsFD int) ([]Listener, error) {
	cfg := &netlink.Config{}
	if netnsFD >= 0 {
		cfg.NetNS = netnsFD
	}
	netns, err := NetNSInode(netnsFD)
	if err != nil {
		return nil, err
	}
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, cfg)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: dial: %w", err)
	}
	defer c.Close()
	var out []Listener
	for _, family := range []uint8{afInet, afInet6} {
		msgs, err := c.Execute(netlink.Message{
			Header: netlink.Header{
				Type:  unix.SOCK_DIAG_BY_FAMILY,
				Flags: netlink.Request | netlink.Dump,
			},
			Data: inetDiagListenReq(family),
		})
		if err != nil {
			return nil, fmt.Errorf("sock_diag: dump family %d: %w", family, err)
		}
		for _, m := range msgs {
			l, err := decodeInetDiagMsg(m.Data)
			if err != nil {
				return nil, fmt.Errorf("sock_diag: %w", err)
			}
			if l.Addr.IsValid() {
				l.NetNS = netns
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// inetDiagListenReq encodes struct inet_diag_req_v2 asking for TCP sockets
// in state LISTEN of one family.
func inetDiagListenReq(family uint8) []byte {
	b := make([]byte, inetDiagReqV2Size)
	b[0] = family                                      // sdiag_family
	b[1] = unix.IPPROTO_TCP                            // sdiag_protocol
	b[2] = 0                                           // idiag_ext
	b[3] = 0                                           // pad
	binary.NativeEndian.PutUint32(b[4:], 1<<tcpListen) // idiag_states: TCPF_LISTEN
	// id (struct inet_diag_sockid) stays zero: no filter.
	return b
}

// decodeInetDiagMsg decodes struct inet_diag_msg. Sockets of other states or
// families yield a zero Listener.
func decodeInetDiagMsg(b []byte) (Listener, error) {
	if len(b) < inetDiagMsgSize {
		return Listener{}, errors.New("short inet_diag_msg")
	}
	family, state := b[0], b[1]
	if state != tcpListen {
		return Listener{}, nil
	}
	// id: sport (be16) @4, dport @6, src[16] @8, dst[16] @24, if @40, cookie[2] @44.
	port := binary.BigEndian.Uint16(b[4:6])
	var addr [16]byte
	copy(addr[:], b[8:24])
	ap, ok := addrFrom(uint16(family), addr, port)
	if !ok {
		return Listener{}, nil
	}
	cookie := uint64(binary.NativeEndian.Uint32(b[44:48])) | uint64(binary.NativeEndian.Uint32(b[48:52]))<<32
	return Listener{
		Addr:       ap,
		Backlog:    binary.NativeEndian.Uint32(b[56:60]), // idiag_rqueue
		MaxBacklog: binary.NativeEndian.Uint32(b[60:64]), // idiag_wqueue
		Cookie:     cookie,
	}, nil
}
