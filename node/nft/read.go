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

// tableReader collects what read finds in the table: the firewall it
// describes and every way the table differs from what Apply programs.
type tableReader struct {
	c      *nftables.Conn
	t      *nftables.Table
	netns  int
	s      nftspec.Spec
	drift  []string
	seen   map[string]bool // sets found
	hpeer4 []netip.Addr
	hback4 []netip.AddrPort
}

func read(c *nftables.Conn, t *nftables.Table, netns int) (model.Firewall, []string, error) {
	r := &tableReader{c: c, t: t, netns: netns, seen: map[string]bool{}}
	if err := r.sets(); err != nil {
		return model.Firewall{}, nil, err
	}
	got, err := r.chains()
	if err != nil {
		return model.Firewall{}, nil, err
	}
	r.s = r.s.Canonical()
	// The rules must be exactly those Apply programs for what was read.
	exp := build(r.s)
	r.drift = append(r.drift, rulesDiff(exp.Rules, got)...)
	return r.s.Firewall(), r.drift, nil
}

// sets reads the sets and their elements.
func (r *tableReader) sets() error {
	want := NewSets(r.t)
	byName := map[string]*nftables.Set{SetVIP4: want.VIP4, SetVIP6: want.VIP6, SetSvc4: want.Svc4, SetSvc6: want.Svc6,
		SetHPeer4: want.HPeer4, SetHBack4: want.HBack4}
	sets, err := r.c.GetSets(r.t)
	if err != nil {
		return fmt.Errorf("list sets: %w", err)
	}
	for _, set := range sets {
		w, ok := byName[set.Name]
		if !ok {
			r.drift = append(r.drift, "unexpected set "+set.Name)
			continue
		}
		r.seen[set.Name] = true
		if set.KeyType.Name != w.KeyType.Name || set.KeyType.Bytes != w.KeyType.Bytes ||
			set.Interval || set.IsMap || set.HasTimeout || set.Constant {
			// The concatenation flag is not compared: nft leaves it out
			// for hash sets, google/nftables sets it; both work the same.
			r.drift = append(r.drift, fmt.Sprintf("set %s has type %q (%d bytes), want %q", set.Name, set.KeyType.Name, set.KeyType.Bytes, w.KeyType.Name))
			continue
		}
		elems, err := r.c.GetSetElements(set)
		if err != nil {
			return fmt.Errorf("list set %s: %w", set.Name, err)
		}
		for _, e := range elems {
			if !r.element(set.Name, e.Key) {
				r.drift = append(r.drift, fmt.Sprintf("set %s: undecodable element %x", set.Name, e.Key))
			}
		}
	}
	for _, name := range []string{SetVIP4, SetVIP6, SetSvc4, SetSvc6} {
		if !r.seen[name] {
			r.drift = append(r.drift, "missing set "+name)
		}
	}
	return nil
}

// element decodes one element of a set; false if it is not one.
func (r *tableReader) element(set string, key []byte) bool {
	var addrs *[]netip.Addr
	var pairs *[]netip.AddrPort
	switch set {
	case SetVIP4:
		addrs = &r.s.VIP4
	case SetVIP6:
		addrs = &r.s.VIP6
	case SetHPeer4:
		addrs = &r.hpeer4
	case SetSvc4:
		pairs = &r.s.Svc4
	case SetSvc6:
		pairs = &r.s.Svc6
	case SetHBack4:
		pairs = &r.hback4
	}
	switch {
	case addrs != nil:
		a, ok := netip.AddrFromSlice(key)
		return appendIf(addrs, a, ok)
	case pairs != nil:
		p, ok := pairFromKey(key)
		return appendIf(pairs, p, ok)
	}
	return false
}

// appendIf appends v to *dst if ok and returns ok.
func appendIf[T any](dst *[]T, v T, ok bool) bool {
	if ok {
		*dst = append(*dst, v)
	}
	return ok
}

// chains reads the chains and their rules and returns every rule read.
func (r *tableReader) chains() ([]dumpedRule, error) {
	chains, err := r.c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	// With flow handoff the table has two more sets and the output chain:
	// all of them or none.
	handoffOn := r.seen[SetHPeer4] || r.seen[SetHBack4]
	if handoffOn {
		for _, name := range []string{SetHPeer4, SetHBack4} {
			if !r.seen[name] {
				r.drift = append(r.drift, "missing set "+name)
			}
		}
		r.s.Handoff = &nftspec.Handoff{Peers4: r.hpeer4, Back4: r.hback4}
	}
	wantChains := map[string]*nftables.Chain{ChainInput: InputChain(r.t), ChainPrerouting: PreroutingChain(r.t)}
	if handoffOn {
		wantChains[ChainOutput] = OutputChain(r.t)
	}
	var got []dumpedRule
	for _, ch := range chains {
		if ch.Table.Name != r.t.Name {
			continue
		}
		w, ok := wantChains[ch.Name]
		if !ok {
			r.drift = append(r.drift, "unexpected chain "+ch.Name)
			continue
		}
		delete(wantChains, ch.Name)
		rules, err := r.chain(w, ch)
		if err != nil {
			return nil, err
		}
		got = append(got, rules...)
	}
	for name := range wantChains {
		r.drift = append(r.drift, "missing chain "+name)
	}
	return got, nil
}

// chain reads the rules of one of lbctl's chains: the handoff port and
// MSS, the transparent rule and the intercepts.
func (r *tableReader) chain(want, ch *nftables.Chain) ([]dumpedRule, error) {
	if d := chainDiff(want, ch); d != "" {
		r.drift = append(r.drift, d)
	}
	rules, err := dumpRules(r.netns, ch.Name)
	if err != nil {
		return nil, err
	}
	for _, rule := range rules {
		if len(rule.unknown) > 0 {
			r.drift = append(r.drift, fmt.Sprintf("chain %s: rule with expressions lbctl does not program: %v", ch.Name, rule.unknown))
		}
	}
	if r.s.Handoff != nil {
		readHandoff(r.s.Handoff, ch.Name, rules)
	}
	if ch.Name != ChainPrerouting {
		return rules, nil
	}
	for _, rule := range rules {
		switch {
		case hasExpr[*expr.Socket](rule):
			r.s.Transparent = true
		case hasExpr[*expr.TProxy](rule):
			ic, err := parseIntercept(rule)
			if err != nil {
				r.drift = append(r.drift, fmt.Sprintf("chain %s: %v", ch.Name, err))
				continue
			}
			r.s.Intercepts = append(r.s.Intercepts, ic)
		}
	}
	return rules, nil
}

// readHandoff recovers the handoff port (from the admission rule of the
// input chain) and the MSS (from the first clamp rule of the output chain,
// the IPv4 one: the IPv6 rule clamps to MSS-20); the caller then compares
// the whole rules with what Apply programs.
func readHandoff(h *nftspec.Handoff, chain string, rules []dumpedRule) {
	mssSeen := false
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
				if c, ok := e.(*expr.Cmp); ok && c.Op == expr.CmpOpGt && len(c.Data) == 2 && !mssSeen {
					h.MSS = uint16(c.Data[0])<<8 | uint16(c.Data[1])
					mssSeen = true
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
