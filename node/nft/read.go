package nft

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/nft/nftspec"
)

// Read lists the table back from the kernel: the set elements, whether the
// transparent rule is there, and the intercept rules. It then checks the
// table's whole shape (sets, chains, every rule's expressions) against what
// Apply programs for the firewall it read; any difference is reported as an
// error wrapping nftspec.ErrDrift, together with the firewall read.
func (k *Kernel) Read() (model.Firewall, bool, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if k.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(k.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return model.Firewall{}, false, fmt.Errorf("nft: %w", err)
	}
	defer c.CloseLasting()
	t, err := c.ListTableOfFamily(model.NFTTable, nftables.TableFamilyINet)
	if errors.Is(err, unix.ENOENT) {
		return model.Firewall{}, false, nil
	}
	if err != nil {
		return model.Firewall{}, false, fmt.Errorf("nft: list table inet %s: %w", model.NFTTable, err)
	}
	fw, drift, err := read(c, t, k.netns)
	if err != nil {
		return model.Firewall{}, true, fmt.Errorf("nft: read table inet %s: %w", model.NFTTable, err)
	}
	if len(drift) > 0 {
		return fw, true, fmt.Errorf("nft: table inet %s: %w: %s", model.NFTTable, nftspec.ErrDrift, strings.Join(drift, "; "))
	}
	return fw, true, nil
}

func read(c *nftables.Conn, t *nftables.Table, netns int) (model.Firewall, []string, error) {
	var s nftspec.Spec
	var drift []string
	want := NewSets(t)
	sets, err := c.GetSets(t)
	if err != nil {
		return model.Firewall{}, nil, fmt.Errorf("list sets: %w", err)
	}
	seen := map[string]bool{}
	var hpeer4 []netip.Addr
	var hback4 []netip.AddrPort
	for _, set := range sets {
		var w *nftables.Set
		switch set.Name {
		case SetVIP4:
			w = want.VIP4
		case SetVIP6:
			w = want.VIP6
		case SetSvc4:
			w = want.Svc4
		case SetSvc6:
			w = want.Svc6
		case SetHPeer4:
			w = want.HPeer4
		case SetHBack4:
			w = want.HBack4
		default:
			drift = append(drift, "unexpected set "+set.Name)
			continue
		}
		seen[set.Name] = true
		if set.KeyType.Name != w.KeyType.Name || set.KeyType.Bytes != w.KeyType.Bytes ||
			set.Interval || set.IsMap || set.HasTimeout || set.Constant {
			// The concatenation flag is not compared: nft leaves it out
			// for hash sets, google/nftables sets it; both work the same.
			drift = append(drift, fmt.Sprintf("set %s has type %q (%d bytes), want %q", set.Name, set.KeyType.Name, set.KeyType.Bytes, w.KeyType.Name))
			continue
		}
		elems, err := c.GetSetElements(set)
		if err != nil {
			return model.Firewall{}, nil, fmt.Errorf("list set %s: %w", set.Name, err)
		}
		for _, e := range elems {
			var ok bool
			switch set.Name {
			case SetVIP4, SetVIP6:
				var a netip.Addr
				if a, ok = netip.AddrFromSlice(e.Key); ok {
					if set.Name == SetVIP4 {
						s.VIP4 = append(s.VIP4, a)
					} else {
						s.VIP6 = append(s.VIP6, a)
					}
				}
			case SetSvc4, SetSvc6:
				var p netip.AddrPort
				if p, ok = pairFromKey(e.Key); ok {
					if set.Name == SetSvc4 {
						s.Svc4 = append(s.Svc4, p)
					} else {
						s.Svc6 = append(s.Svc6, p)
					}
				}
			case SetHPeer4:
				var a netip.Addr
				if a, ok = netip.AddrFromSlice(e.Key); ok {
					hpeer4 = append(hpeer4, a)
				}
			case SetHBack4:
				var p netip.AddrPort
				if p, ok = pairFromKey(e.Key); ok {
					hback4 = append(hback4, p)
				}
			}
			if !ok {
				drift = append(drift, fmt.Sprintf("set %s: undecodable element %x", set.Name, e.Key))
			}
		}
	}
	for _, name := range []string{SetVIP4, SetVIP6, SetSvc4, SetSvc6} {
		if !seen[name] {
			drift = append(drift, "missing set "+name)
		}
	}

	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return model.Firewall{}, nil, fmt.Errorf("list chains: %w", err)
	}
	// With flow handoff the table has two more sets and the output chain:
	// all of them or none.
	handoffOn := seen[SetHPeer4] || seen[SetHBack4]
	if handoffOn {
		for _, name := range []string{SetHPeer4, SetHBack4} {
			if !seen[name] {
				drift = append(drift, "missing set "+name)
			}
		}
		s.Handoff = &nftspec.Handoff{Peers4: hpeer4, Back4: hback4}
	}
	wantChains := map[string]*nftables.Chain{ChainInput: InputChain(t), ChainPrerouting: PreroutingChain(t)}
	if handoffOn {
		wantChains[ChainOutput] = OutputChain(t)
	}
	var got []dumpedRule
	for _, ch := range chains {
		if ch.Table.Name != t.Name {
			continue
		}
		w, ok := wantChains[ch.Name]
		if !ok {
			drift = append(drift, "unexpected chain "+ch.Name)
			continue
		}
		delete(wantChains, ch.Name)
		if d := chainDiff(w, ch); d != "" {
			drift = append(drift, d)
		}
		rules, err := dumpRules(netns, ch.Name)
		if err != nil {
			return model.Firewall{}, nil, err
		}
		for _, r := range rules {
			if len(r.unknown) > 0 {
				drift = append(drift, fmt.Sprintf("chain %s: rule with expressions lbctl does not program: %v", ch.Name, r.unknown))
			}
		}
		if handoffOn {
			readHandoff(s.Handoff, ch.Name, rules)
		}
		if ch.Name == ChainPrerouting {
			for _, r := range rules {
				switch {
				case hasExpr[*expr.Socket](r):
					s.Transparent = true
				case hasExpr[*expr.TProxy](r):
					ic, err := parseIntercept(r)
					if err != nil {
						drift = append(drift, fmt.Sprintf("chain %s: %v", ch.Name, err))
						continue
					}
					s.Intercepts = append(s.Intercepts, ic)
				}
			}
		}
		got = append(got, rules...)
	}
	for name := range wantChains {
		drift = append(drift, "missing chain "+name)
	}
	s.Sort()
	// The rules must be exactly those Apply programs for what was read.
	exp := build(s)
	drift = append(drift, rulesDiff(exp.Rules, got)...)
	return s.Firewall(), drift, nil
}

// readHandoff recovers the handoff port (from the admission rule of the
// input chain) and the MSS (from the clamp rules of the output chain); the
// caller then compares the whole rules with what Apply programs.
func readHandoff(h *nftspec.Handoff, chain string, rules []dumpedRule) {
	for _, r := range rules {
		switch {
		case chain == ChainInput && hasExpr[*expr.Objref](r):
			for _, e := range r.exprs {
				if c, ok := e.(*expr.Cmp); ok && len(c.Data) == 2 {
					h.Port = uint16(c.Data[0])<<8 | uint16(c.Data[1])
					break
				}
			}
		case chain == ChainOutput:
			for _, e := range r.exprs {
				if c, ok := e.(*expr.Cmp); ok && c.Op == expr.CmpOpGt && len(c.Data) == 2 {
					h.MSS = uint16(c.Data[0])<<8 | uint16(c.Data[1])
				}
			}
		}
	}
}

func hasExpr[T expr.Any](r dumpedRule) bool {
	for _, e := range r.exprs {
		if _, ok := e.(T); ok {
			return true
		}
	}
	return false
}

// pairFromKey decodes an address . inet_service key.
func pairFromKey(k []byte) (netip.AddrPort, bool) {
	var n int
	switch len(k) {
	case 8:
		n = 4
	case 20:
		n = 16
	default:
		return netip.AddrPort{}, false
	}
	a, _ := netip.AddrFromSlice(k[:n])
	return netip.AddrPortFrom(a, uint16(k[n])<<8|uint16(k[n+1])), true
}

func chainDiff(want, got *nftables.Chain) string {
	eq := func(a, b *nftables.ChainHook) bool { return a != nil && b != nil && *a == *b }
	eqp := func(a, b *nftables.ChainPriority) bool { return a != nil && b != nil && *a == *b }
	eqpol := func(a, b *nftables.ChainPolicy) bool { return a != nil && b != nil && *a == *b }
	if got.Type != want.Type || !eq(got.Hooknum, want.Hooknum) || !eqp(got.Priority, want.Priority) || !eqpol(got.Policy, want.Policy) {
		return fmt.Sprintf("chain %s has another type, hook, priority or policy", got.Name)
	}
	return ""
}

// parseIntercept recovers an intercept from the expressions InterceptRule
// makes; the caller then compares the whole rule with InterceptRule's.
func parseIntercept(r dumpedRule) (nftspec.Intercept, error) {
	var (
		ic        nftspec.Intercept
		fam       byte
		size      int
		loaded    *expr.Payload
		maskBits  = -1
		imm       = map[uint32][]byte{}
		prefixSet bool
	)
	for i, e := range r.exprs {
		switch e := e.(type) {
		case *expr.Meta:
			if e.Key == expr.MetaKeyNFPROTO && i+1 < len(r.exprs) {
				if c, ok := r.exprs[i+1].(*expr.Cmp); ok && len(c.Data) == 1 {
					fam = c.Data[0]
				}
			}
		case *expr.Payload:
			loaded = e
		case *expr.Bitwise:
			n := 0
			for _, b := range e.Mask {
				n += bits.OnesCount8(b)
			}
			maskBits = n
		case *expr.Cmp:
			if loaded == nil {
				continue
			}
			switch {
			case loaded.Base == expr.PayloadBaseNetworkHeader:
				size = 4
				if fam == unix.NFPROTO_IPV6 {
					size = 16
				}
				raw := make([]byte, size)
				copy(raw, e.Data)
				a, _ := netip.AddrFromSlice(raw)
				b := 8 * len(e.Data)
				if maskBits >= 0 {
					b = maskBits
				}
				p, err := a.Prefix(b)
				if err != nil {
					return ic, fmt.Errorf("intercept rule: %w", err)
				}
				ic.Prefix, prefixSet = p, true
			case loaded.Base == expr.PayloadBaseTransportHeader && len(e.Data) == 2:
				ic.Port = uint16(e.Data[0])<<8 | uint16(e.Data[1])
			}
			loaded, maskBits = nil, -1
		case *expr.Immediate:
			imm[e.Register] = e.Data
		case *expr.TProxy:
			if p := imm[e.RegPort]; len(p) == 2 {
				ic.ToPort = uint16(p[0])<<8 | uint16(p[1])
			}
			if e.RegAddr != 0 {
				ic.To, _ = netip.AddrFromSlice(imm[e.RegAddr])
			}
		}
	}
	if !prefixSet {
		switch fam {
		case unix.NFPROTO_IPV4:
			ic.Prefix = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		case unix.NFPROTO_IPV6:
			ic.Prefix = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		default:
			return ic, errors.New("tproxy rule without an address family")
		}
	}
	if ic.Port == 0 || ic.ToPort == 0 {
		return ic, errors.New("tproxy rule without a port match or target port")
	}
	return ic, nil
}

// rulesDiff compares rules by chain and expressions, ignoring what the
// kernel fills in (handles, positions) or leaves out (set IDs).
func rulesDiff(want []*nftables.Rule, got []dumpedRule) []string {
	key := func(chain string, exprs []expr.Any) string {
		var b strings.Builder
		b.WriteString(chain)
		for _, e := range exprs {
			if l, ok := e.(*expr.Lookup); ok {
				c := *l
				c.SetID = 0
				e = &c
			}
			fmt.Fprintf(&b, " %T%+v", e, e)
		}
		return b.String()
	}
	w := make([]string, len(want))
	for i, r := range want {
		w[i] = key(r.Chain.Name, r.Exprs)
	}
	g := make([]string, len(got))
	for i, r := range got {
		g[i] = key(r.chain, r.exprs)
	}
	if slices.Equal(w, g) {
		return nil
	}
	var out []string
	for _, x := range g {
		if !slices.Contains(w, x) {
			out = append(out, "unexpected rule "+x)
		}
	}
	for _, x := range w {
		if !slices.Contains(g, x) {
			out = append(out, "missing rule "+x)
		}
	}
	if len(out) == 0 {
		out = append(out, "rules out of order")
	}
	return out
}
