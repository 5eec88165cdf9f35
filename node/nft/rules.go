package nft

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/nft/nftspec"
)

// Names of the sets and chains in the table.
const (
	SetVIP4         = "vip4"
	SetVIP6         = "vip6"
	SetSvc4         = "svc4"
	SetSvc6         = "svc6"
	SetHPeer4       = "hpeer4"
	SetHBack4       = "hback4"
	ChainInput      = "input"
	ChainPrerouting = "prerouting"
	ChainOutput     = "output"
)

// Offsets of the fields the rules match on.
const (
	offIPv4Daddr = 16 // network header
	offIPv6Daddr = 24 // network header
	offIPv6Saddr = 8  // network header
	offTCPDport  = 2  // transport header
	offIPv4Saddr = 12 // network header
	offTCPSport  = 0  // transport header
	offTCPFlags  = 13 // transport header
	offUDPDport  = 2  // transport header
	tcpFlagSYN   = 0x02
	tcpOptMSS    = 2
)

// Ruleset is the whole content of the table as the nftables objects one
// batch programs, in order. Build makes it without touching the kernel.
type Ruleset struct {
	Table  *nftables.Table
	Sets   []SetElements // vip4, vip6, svc4, svc6
	Chains []*nftables.Chain
	Rules  []*nftables.Rule // input rules, then prerouting rules, then output rules
	// Counter is the named counter of refused handoff packets (nil
	// without handoff).
	Counter *nftables.CounterObj
}

// SetElements is a named set with the elements it must hold.
type SetElements struct {
	Set      *nftables.Set
	Elements []nftables.SetElement
}

// Elements counts the set elements of r.
func (r *Ruleset) Elements() int {
	n := 0
	for _, s := range r.Sets {
		n += len(s.Elements)
	}
	return n
}

// Build validates fw and returns the table that enforces it. Pure: the same
// input gives the same objects.
func Build(fw model.Firewall) (*Ruleset, error) {
	s, err := nftspec.Compile(fw)
	if err != nil {
		return nil, err
	}
	return build(s), nil
}

func build(s nftspec.Spec) *Ruleset {
	t := Table()
	sets := NewSets(t)
	r := &Ruleset{Table: t}
	r.Sets = []SetElements{
		{sets.VIP4, addrElements(s.VIP4)},
		{sets.VIP6, addrElements(s.VIP6)},
		{sets.Svc4, pairElements(s.Svc4)},
		{sets.Svc6, pairElements(s.Svc6)},
	}
	in, pre := InputChain(t), PreroutingChain(t)
	r.Chains = []*nftables.Chain{in, pre}
	if s.Handoff != nil {
		r.Sets = append(r.Sets,
			SetElements{sets.HPeer4, addrElements(s.Handoff.Peers4)},
			SetElements{sets.HBack4, pairElements(s.Handoff.Back4)})
		r.Counter = &nftables.CounterObj{Table: t, Name: model.HandoffRefusedCounter}
		r.Rules = append(r.Rules, HandoffAdmitRule(in, sets, s.Handoff.Port))
	}
	r.Rules = append(r.Rules, InputRules(in, sets)...)
	r.Rules = append(r.Rules, preroutingRules(pre, s.Transparent, s.Intercepts)...)
	if s.Handoff != nil {
		out := OutputChain(t)
		r.Chains = append(r.Chains, out)
		r.Rules = append(r.Rules, ClampRules(out, sets, s.Handoff.MSS)...)
	}
	return r
}

// HandoffAdmitRule drops, and counts, encapsulated flow handoff packets
// (VXLAN on port) from anything but a peer LB node:
//
//	udp dport PORT ip saddr != @hpeer4 counter name "handoff_refused" drop
//
// The expressions are those nft makes of that line.
func HandoffAdmitRule(ch *nftables.Chain, s Sets, port uint16) *nftables.Rule {
	var e []expr.Any
	e = append(e, l4proto(unix.IPPROTO_UDP)...)
	e = append(e, load(expr.PayloadBaseTransportHeader, offUDPDport, 2, unix.NFT_REG_1)...)
	e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: be16(port)})
	e = append(e, nfproto(unix.NFPROTO_IPV4)...)
	e = append(e, load(expr.PayloadBaseNetworkHeader, offIPv4Saddr, 4, unix.NFT_REG_1)...)
	e = append(e, &expr.Lookup{SourceRegister: unix.NFT_REG_1, SetName: s.HPeer4.Name, SetID: s.HPeer4.ID, Invert: true})
	e = append(e, &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: model.HandoffRefusedCounter})
	e = append(e, verdict(expr.VerdictDrop)...)
	return &nftables.Rule{Table: ch.Table, Chain: ch, Exprs: e}
}

// OutputChain is the filter chain on the output hook, priority mangle
// (-150), policy accept, for the MSS clamp of flow handoff.
func OutputChain(t *nftables.Table) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{Name: ChainOutput, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle, Policy: &accept}
}

// ClampRules clamp the MSS the node announces on VIP connections (its
// SYN-ACKs from a VIP:port) and on connections to transparent backends (its
// SYNs to them), so that what the peer sends fits the path once a node
// hands it off with 50 bytes of encapsulation; on IPv6 VIP connections to
// MSS-20 (model.HandoffMSS6: the IPv6 header is 20 bytes longer):
//
//	tcp flags syn ip saddr . tcp sport @svc4 tcp option maxseg size > MSS tcp option maxseg size set MSS
//	tcp flags syn ip daddr . tcp dport @hback4 tcp option maxseg size > MSS tcp option maxseg size set MSS
//	tcp flags syn ip6 saddr . tcp sport @svc6 tcp option maxseg size > MSS-20 tcp option maxseg size set MSS-20
func ClampRules(ch *nftables.Chain, s Sets, mss uint16) []*nftables.Rule {
	clamp := func(fam byte, addrOff, addrLen, portOff uint32, set *nftables.Set, mss uint16) *nftables.Rule {
		portReg := uint32(unix.NFT_REG32_01)
		if fam == unix.NFPROTO_IPV6 {
			portReg = unix.NFT_REG_2
		}
		var e []expr.Any
		e = append(e, l4proto(unix.IPPROTO_TCP)...)
		e = append(e, load(expr.PayloadBaseTransportHeader, offTCPFlags, 1, unix.NFT_REG_1)...)
		e = append(e,
			&expr.Bitwise{SourceRegister: unix.NFT_REG_1, DestRegister: unix.NFT_REG_1, Len: 1, Mask: []byte{tcpFlagSYN}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: unix.NFT_REG_1, Data: []byte{0}})
		e = append(e, nfproto(fam)...)
		e = append(e, load(expr.PayloadBaseNetworkHeader, addrOff, addrLen, unix.NFT_REG_1)...)
		e = append(e, load(expr.PayloadBaseTransportHeader, portOff, 2, portReg)...)
		e = append(e, lookup(set)...)
		e = append(e,
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: tcpOptMSS, Offset: 2, Len: 2, DestRegister: unix.NFT_REG_1},
			&expr.Cmp{Op: expr.CmpOpGt, Register: unix.NFT_REG_1, Data: be16(mss)},
			&expr.Immediate{Register: unix.NFT_REG_1, Data: be16(mss)},
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: tcpOptMSS, Offset: 2, Len: 2, SourceRegister: unix.NFT_REG_1})
		return &nftables.Rule{Table: ch.Table, Chain: ch, Exprs: e}
	}
	return []*nftables.Rule{
		clamp(unix.NFPROTO_IPV4, offIPv4Saddr, 4, offTCPSport, s.Svc4, mss),
		clamp(unix.NFPROTO_IPV4, offIPv4Daddr, 4, offTCPDport, s.HBack4, mss),
		clamp(unix.NFPROTO_IPV6, offIPv6Saddr, 16, offTCPSport, s.Svc6, mss-model.HandoffIPv6Extra),
	}
}

// Table is the only table lbctl owns: inet lbctl.
func Table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: model.NFTTable}
}

// Sets are the named sets of the table: four always, two more with flow
// handoff.
type Sets struct {
	VIP4, VIP6, Svc4, Svc6 *nftables.Set
	HPeer4, HBack4         *nftables.Set
}

// NewSets returns the table's sets (without elements). The IDs name them
// within the batch that creates them.
func NewSets(t *nftables.Table) Sets {
	return Sets{
		VIP4: &nftables.Set{Table: t, ID: 1, Name: SetVIP4, KeyType: nftables.TypeIPAddr},
		VIP6: &nftables.Set{Table: t, ID: 2, Name: SetVIP6, KeyType: nftables.TypeIP6Addr},
		Svc4: &nftables.Set{Table: t, ID: 3, Name: SetSvc4, Concatenation: true,
			KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)},
		Svc6: &nftables.Set{Table: t, ID: 4, Name: SetSvc6, Concatenation: true,
			KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService)},
		HPeer4: &nftables.Set{Table: t, ID: 5, Name: SetHPeer4, KeyType: nftables.TypeIPAddr},
		HBack4: &nftables.Set{Table: t, ID: 6, Name: SetHBack4, Concatenation: true,
			KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)},
	}
}

// InputChain is the filter chain on the input hook, priority filter (0),
// policy accept: it only acts on traffic aimed at VIP addresses.
func InputChain(t *nftables.Table) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{Name: ChainInput, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept}
}

// PreroutingChain is the filter chain on the prerouting hook, priority
// mangle (-150), policy accept, for TPROXY marking and interception.
func PreroutingChain(t *nftables.Table) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{Name: ChainPrerouting, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle, Policy: &accept}
}

// InputRules are the seven rules of the input chain: packets of established
// connections accepted (replies to connections the node itself opens from a
// VIP address, such as its health probes), declared VIP:port pairs
// accepted, ICMP to VIPs accepted, anything else to a VIP dropped. Their
// number does not depend on the set contents.
func InputRules(ch *nftables.Chain, s Sets) []*nftables.Rule {
	rule := func(e ...[]expr.Any) *nftables.Rule {
		var all []expr.Any
		for _, x := range e {
			all = append(all, x...)
		}
		return &nftables.Rule{Table: ch.Table, Chain: ch, Exprs: all}
	}
	return []*nftables.Rule{
		// ct state established,related accept
		rule(ctEstablished(), verdict(expr.VerdictAccept)),
		// ip daddr . tcp dport @svc4 accept
		rule(nfproto(unix.NFPROTO_IPV4), l4proto(unix.IPPROTO_TCP),
			load(expr.PayloadBaseNetworkHeader, offIPv4Daddr, 4, unix.NFT_REG_1),
			load(expr.PayloadBaseTransportHeader, offTCPDport, 2, unix.NFT_REG32_01),
			lookup(s.Svc4), verdict(expr.VerdictAccept)),
		// ip6 daddr . tcp dport @svc6 accept
		rule(nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_TCP),
			load(expr.PayloadBaseNetworkHeader, offIPv6Daddr, 16, unix.NFT_REG_1),
			load(expr.PayloadBaseTransportHeader, offTCPDport, 2, unix.NFT_REG_2),
			lookup(s.Svc6), verdict(expr.VerdictAccept)),
		// meta l4proto icmp ip daddr @vip4 accept
		rule(l4proto(unix.IPPROTO_ICMP), nfproto(unix.NFPROTO_IPV4),
			load(expr.PayloadBaseNetworkHeader, offIPv4Daddr, 4, unix.NFT_REG_1),
			lookup(s.VIP4), verdict(expr.VerdictAccept)),
		// meta l4proto ipv6-icmp ip6 daddr @vip6 accept
		rule(l4proto(unix.IPPROTO_ICMPV6), nfproto(unix.NFPROTO_IPV6),
			load(expr.PayloadBaseNetworkHeader, offIPv6Daddr, 16, unix.NFT_REG_1),
			lookup(s.VIP6), verdict(expr.VerdictAccept)),
		// ip daddr @vip4 drop
		rule(nfproto(unix.NFPROTO_IPV4),
			load(expr.PayloadBaseNetworkHeader, offIPv4Daddr, 4, unix.NFT_REG_1),
			lookup(s.VIP4), verdict(expr.VerdictDrop)),
		// ip6 daddr @vip6 drop
		rule(nfproto(unix.NFPROTO_IPV6),
			load(expr.PayloadBaseNetworkHeader, offIPv6Daddr, 16, unix.NFT_REG_1),
			lookup(s.VIP6), verdict(expr.VerdictDrop)),
	}
}

// preroutingRules are the prerouting chain's rules: the transparent-socket
// mark when transparent, then one tproxy rule per intercept.
func preroutingRules(ch *nftables.Chain, transparent bool, intercepts []nftspec.Intercept) []*nftables.Rule {
	var rules []*nftables.Rule
	if transparent {
		rules = append(rules, TransparentRule(ch))
	}
	for _, ic := range intercepts {
		rules = append(rules, InterceptRule(ch, ic.Prefix, ic.Port, ic.To, ic.ToPort))
	}
	return rules
}

// TransparentRule marks packets of transparent sockets so that the TPROXY
// policy rule (fwmark model.TProxyMark) delivers them locally:
//
//	meta l4proto tcp socket transparent 1 meta mark set 0x00000001 accept
func TransparentRule(ch *nftables.Chain) *nftables.Rule {
	var e []expr.Any
	e = append(e, l4proto(unix.IPPROTO_TCP)...)
	e = append(e,
		&expr.Socket{Key: expr.SocketKeyTransparent, Register: unix.NFT_REG_1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: []byte{1}},
	)
	e = append(e, setMark()...)
	e = append(e, verdict(expr.VerdictAccept)...)
	return &nftables.Rule{Table: ch.Table, Chain: ch, Exprs: e}
}

// InterceptRule diverts TCP to prefix:port into the local transparent
// listener on to:toPort (to may be the zero Addr: any local address) and
// marks it:
//
//	ip daddr P tcp dport N tproxy ip to A:M meta mark set 0x00000001 accept
//
// The prefix match is encoded as nft does: a byte-aligned prefix loads only
// its bytes, any other loads the address and masks it; /0 matches the family
// only.
func InterceptRule(ch *nftables.Chain, prefix netip.Prefix, port uint16, to netip.Addr, toPort uint16) *nftables.Rule {
	fam, off, size := byte(unix.NFPROTO_IPV4), uint32(offIPv4Daddr), uint32(4)
	if prefix.Addr().Is6() {
		fam, off, size = unix.NFPROTO_IPV6, offIPv6Daddr, 16
	}
	var e []expr.Any
	e = append(e, nfproto(fam)...)
	bits := prefix.Bits()
	raw := prefix.Addr().AsSlice()
	switch {
	case bits == 0:
	case bits%8 == 0:
		n := uint32(bits / 8)
		e = append(e, load(expr.PayloadBaseNetworkHeader, off, n, unix.NFT_REG_1)...)
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: raw[:n]})
	default:
		e = append(e, load(expr.PayloadBaseNetworkHeader, off, size, unix.NFT_REG_1)...)
		e = append(e,
			&expr.Bitwise{SourceRegister: unix.NFT_REG_1, DestRegister: unix.NFT_REG_1, Len: size,
				Mask: mask(bits, int(size)), Xor: make([]byte, size)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: raw},
		)
	}
	e = append(e, l4proto(unix.IPPROTO_TCP)...)
	e = append(e, load(expr.PayloadBaseTransportHeader, offTCPDport, 2, unix.NFT_REG_1)...)
	e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: be16(port)})
	tp := &expr.TProxy{Family: fam, TableFamily: byte(nftables.TableFamilyINet), RegPort: unix.NFT_REG_1}
	if to.IsValid() {
		e = append(e,
			&expr.Immediate{Register: unix.NFT_REG_1, Data: to.AsSlice()},
			&expr.Immediate{Register: unix.NFT_REG_2, Data: be16(toPort)})
		tp.RegAddr, tp.RegPort = unix.NFT_REG_1, unix.NFT_REG_2
	} else {
		e = append(e, &expr.Immediate{Register: unix.NFT_REG_1, Data: be16(toPort)})
	}
	e = append(e, tp)
	e = append(e, setMark()...)
	e = append(e, verdict(expr.VerdictAccept)...)
	return &nftables.Rule{Table: ch.Table, Chain: ch, Exprs: e}
}

func nfproto(fam byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: unix.NFT_REG_1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: []byte{fam}},
	}
}

func l4proto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG_1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: []byte{proto}},
	}
}

func load(base expr.PayloadBase, off, n, reg uint32) []expr.Any {
	return []expr.Any{&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: base, Offset: off, Len: n}}
}

func lookup(s *nftables.Set) []expr.Any {
	return []expr.Any{&expr.Lookup{SourceRegister: unix.NFT_REG_1, SetName: s.Name, SetID: s.ID}}
}

// ctEstablished matches "ct state established,related".
func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: unix.NFT_REG_1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: unix.NFT_REG_1, DestRegister: unix.NFT_REG_1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: unix.NFT_REG_1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func verdict(k expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: k}}
}

func setMark() []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: unix.NFT_REG_1, Data: binaryutil.NativeEndian.PutUint32(model.TProxyMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: unix.NFT_REG_1},
	}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// mask is a network mask of bits ones in size bytes.
func mask(bits, size int) []byte {
	m := make([]byte, size)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// addrElements are set keys for addresses (network byte order).
func addrElements(as []netip.Addr) []nftables.SetElement {
	if len(as) == 0 {
		return nil
	}
	out := make([]nftables.SetElement, len(as))
	for i, a := range as {
		out[i] = nftables.SetElement{Key: a.AsSlice()}
	}
	return out
}

// pairElements are keys of address . inet_service concatenations: the
// address, then the port in network byte order padded to a 4-byte register.
func pairElements(ps []netip.AddrPort) []nftables.SetElement {
	if len(ps) == 0 {
		return nil
	}
	out := make([]nftables.SetElement, len(ps))
	for i, p := range ps {
		k := p.Addr().AsSlice()
		k = binary.BigEndian.AppendUint16(k, p.Port())
		k = append(k, 0, 0)
		out[i] = nftables.SetElement{Key: k}
	}
	return out
}
