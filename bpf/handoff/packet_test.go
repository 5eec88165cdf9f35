//go:build linux

package handoff

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/test/netnstest"
)

// tc verdicts the programs return.
const (
	actOK   = 0
	actShot = 2
)

// segment is a TCP segment without payload, framed as the programs see it.
type segment struct {
	src, dst netip.AddrPort
	syn, ack bool
	hopByHop bool // an IPv6 hop-by-hop options header before TCP
}

func (s segment) frame() []byte {
	b := append([]byte{}, DeviceMAC...)
	b = append(b, 0x02, 0x6c, 0x62, 0x68, 0x00, 0x02)
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], s.src.Port())
	binary.BigEndian.PutUint16(tcp[2:], s.dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], 1000)
	tcp[12] = 5 << 4
	if s.syn {
		tcp[13] |= 0x02
	}
	if s.ack {
		tcp[13] |= 0x10
		binary.BigEndian.PutUint32(tcp[8:], 2000)
	}
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	if s.src.Addr().Is4() {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		ip := []byte{0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0}
		src, dst := s.src.Addr().As4(), s.dst.Addr().As4()
		return append(append(append(append(b, ip...), src[:]...), dst[:]...), tcp...)
	}
	b = binary.BigEndian.AppendUint16(b, 0x86dd)
	next, ext := byte(6), []byte(nil)
	if s.hopByHop {
		next, ext = 0, []byte{6, 0, 1, 4, 0, 0, 0, 0} // next TCP, PadN
	}
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ext)+len(tcp)))
	b = append(b, next, 64)
	src, dst := s.src.Addr().As16(), s.dst.Addr().As16()
	return append(append(append(append(b, src[:]...), dst[:]...), ext...), tcp...)
}

// packetNode is one LB node with the datapath attached, the VIPs on lo and
// an established IPv6 connection to vip6 from conn6 (both ends local).
type packetNode struct {
	ns    *netnstest.NS
	dp    *Datapath
	conn6 netip.AddrPort // the client end of the established connection
}

var backend6 = netip.MustParseAddrPort("[2001:db8::50]:8080")

func newPacketNode(t *testing.T, peers ...netip.Addr) *packetNode {
	dp := mustLoad(t)
	n := &packetNode{ns: netnstest.New(t, "hp"), dp: dp}
	// The uplink, to a namespace that stands in for the router (this
	// kernel has no dummy driver).
	up := netnstest.Veth(t, n.ns, "203.0.113.2/24", netnstest.New(t, "hp-r"), "203.0.113.1/24").A
	n.ns.AddAddr(t, "lo", vip.Addr().String()+"/32")
	n.ns.AddAddr(t, "lo", vip6.Addr().String()+"/128")
	n.ns.AddAddr(t, "lo", "2001:db8::99/128")
	var ln net.Listener
	var c net.Conn
	if err := n.ns.Do(func() (err error) {
		if ln, err = net.Listen("tcp", vip6.String()); err != nil {
			return err
		}
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("2001:db8::99")}}
		c, err = d.Dial("tcp", vip6.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ln.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	n.conn6 = c.LocalAddr().(*net.TCPAddr).AddrPort()
	apply(t, dp, Config{NetNS: n.ns.Fd(), Uplinks: []string{up}, Local: netip.MustParseAddr("203.0.113.2"),
		Peers: peers, VIPs: []netip.AddrPort{vip, vip6}, Backends: []netip.AddrPort{backend6}})
	return n
}

// run runs prog on frame with BPF_PROG_TEST_RUN inside the node's network
// namespace (where bpf_skc_lookup_tcp looks) and returns the verdict.
func (n *packetNode) run(t *testing.T, prog *ebpf.Program, frame []byte) uint32 {
	t.Helper()
	var ret uint32
	if err := n.ns.Do(func() (err error) {
		ret, err = prog.Run(&ebpf.RunOptions{Data: frame})
		return err
	}); err != nil {
		t.Skipf("BPF_PROG_TEST_RUN of a tc program: %v", err)
	}
	return ret
}

// TestPacketsIPv6 runs the programs on single IPv6 frames: a node forwards
// (one copy per peer) a non-SYN segment to a VIP port or from a transparent
// backend that no local socket owns, and lets through what a local socket
// owns, SYNs, other ports and what it does not parse; from the tunnel a
// frame is delivered when a socket owns it and dropped otherwise, never
// forwarded again, and what is not VIP traffic is refused.
func TestPacketsIPv6(t *testing.T) {
	n := newPacketNode(t, netip.MustParseAddr("203.0.113.3"), netip.MustParseAddr("203.0.113.4"))
	stranger := netip.MustParseAddrPort("[2001:db8::77]:5555")
	client := netip.MustParseAddrPort("[2001:db8:c::2]:4444")
	up, tun := n.dp.objs.HandoffUplink, n.dp.objs.HandoffTunnel
	for _, tc := range []struct {
		name string
		prog *ebpf.Program
		seg  segment
		want uint32
		diff Counters
	}{
		{"uplink: no socket, to a VIP port: one copy per peer", up, segment{src: stranger, dst: vip6, ack: true}, actShot, Counters{Forwarded: 2}},
		{"uplink: a local socket owns it", up, segment{src: n.conn6, dst: vip6, ack: true}, actOK, Counters{}},
		{"uplink: a SYN stays here", up, segment{src: stranger, dst: vip6, syn: true}, actOK, Counters{}},
		{"uplink: not a VIP port", up, segment{src: stranger, dst: netip.AddrPortFrom(vip6.Addr(), 81), ack: true}, actOK, Counters{}},
		{"uplink: a transparent backend's reply", up, segment{src: backend6, dst: client, ack: true}, actShot, Counters{Forwarded: 2}},
		{"uplink: extension header, not parsed", up, segment{src: stranger, dst: vip6, ack: true, hopByHop: true}, actOK, Counters{}},
		{"uplink: IPv4 as before", up, segment{src: netip.MustParseAddrPort("198.51.100.7:5555"), dst: vip, ack: true}, actShot, Counters{Forwarded: 2}},
		{"tunnel: a local socket owns it: delivered", tun, segment{src: n.conn6, dst: vip6, ack: true}, actOK, Counters{Delivered: 1}},
		{"tunnel: no socket: dropped, never forwarded again", tun, segment{src: stranger, dst: vip6, ack: true}, actShot, Counters{Dropped: 1}},
		{"tunnel: a SYN is refused", tun, segment{src: stranger, dst: vip6, syn: true}, actShot, Counters{Refused: 1}},
		{"tunnel: not a VIP port is refused", tun, segment{src: stranger, dst: netip.AddrPortFrom(vip6.Addr(), 22), ack: true}, actShot, Counters{Refused: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := n.dp.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if got := n.run(t, tc.prog, tc.seg.frame()); got != tc.want {
				t.Errorf("verdict %d, want %d", got, tc.want)
			}
			after, err := n.dp.Counters()
			if err != nil {
				t.Fatal(err)
			}
			got := Counters{Forwarded: after.Forwarded - before.Forwarded, ForwardErrors: after.ForwardErrors - before.ForwardErrors,
				NoPeer: after.NoPeer - before.NoPeer, Delivered: after.Delivered - before.Delivered,
				Dropped: after.Dropped - before.Dropped, Refused: after.Refused - before.Refused}
			if got != tc.diff {
				t.Errorf("counters moved by %+v, want %+v", got, tc.diff)
			}
		})
	}
}

// vxlanFrame is frame in a VXLAN header of the site's network identifier.
func vxlanFrame(frame []byte) []byte {
	vni := uint32(DefaultVNI)
	h := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	return append(h, frame...)
}

// TestForgedIPv6Refused sends a node VXLAN datagrams that carry an IPv6
// segment of an established VIP connection: from a host that is not a peer
// node the table drops it (handoff_refused) and the node delivers nothing;
// from the peer it is delivered.
func TestForgedIPv6Refused(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.12")
	n := newPacketNode(t, peer)
	peerNS, stranger := netnstest.New(t, "hp-peer"), netnstest.New(t, "hp-x")
	netnstest.Veth(t, peerNS, peer.String()+"/24", n.ns, "198.51.100.11/24")
	netnstest.Veth(t, stranger, "192.0.2.99/24", n.ns, "192.0.2.1/24")
	k, err := nft.New(nft.WithNetNS(n.ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(model.Firewall{
		VIPs6:   []netip.Addr{vip6.Addr()},
		Accept6: []model.AddrPort{{Addr: vip6.Addr(), Port: int(vip6.Port())}},
		Handoff: &model.Handoff{Port: model.HandoffPort, MSS: model.HandoffMSS, Peers4: []netip.Addr{peer}},
	}); err != nil {
		t.Fatal(err)
	}
	payload := vxlanFrame(segment{src: n.conn6, dst: vip6, ack: true}.frame())
	send := func(from *netnstest.NS, to string) {
		t.Helper()
		if err := from.Do(func() error {
			c, err := net.Dial("udp4", net.JoinHostPort(to, "4789"))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(payload)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// waitFor polls the counters until cond holds (packets cross veths
	// asynchronously); a hang guard, not a time target.
	waitFor := func(what string, cond func(c Counters, refused uint64) bool) {
		t.Helper()
		var c Counters
		var refused uint64
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			c, _ = n.dp.Counters()
			refused, _, _ = k.HandoffRefused()
			if cond(c, refused) {
				return
			}
		}
		t.Fatalf("%s: counters %+v, handoff_refused %d", what, c, refused)
	}
	send(stranger, "192.0.2.1")
	waitFor("from a stranger", func(_ Counters, refused uint64) bool { return refused == 1 })
	send(peerNS, "198.51.100.11")
	waitFor("from the peer", func(c Counters, _ uint64) bool { return c.Delivered == 1 })
	c, _ := n.dp.Counters()
	if refused, _, _ := k.HandoffRefused(); refused != 1 || c.Delivered != 1 || c.Refused != 0 || c.Dropped != 0 {
		t.Fatalf("counters %+v, handoff_refused %d: want only the peer's datagram delivered", c, refused)
	}
}
