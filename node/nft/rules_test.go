package nft

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// manyPairs is a firewall with n VIP:port pairs: n/2 IPv4 and n/2 IPv6
// addresses with one port each... spread over two ports per address.
func manyPairs(n int) model.Firewall {
	var fw model.Firewall
	for i := 0; len(fw.Accept4)+len(fw.Accept6) < n; i++ {
		a4 := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b := netip.MustParseAddr("2001:db8::").As16()
		b[13], b[14], b[15] = byte(i>>16), byte(i>>8), byte(i)
		a6 := netip.AddrFrom16(b)
		fw.VIPs4 = append(fw.VIPs4, a4)
		fw.VIPs6 = append(fw.VIPs6, a6)
		for _, p := range []int{80, 443} {
			if len(fw.Accept4)+len(fw.Accept6) < n {
				fw.Accept4 = append(fw.Accept4, model.AddrPort{Addr: a4, Port: p})
			}
			if len(fw.Accept4)+len(fw.Accept6) < n {
				fw.Accept6 = append(fw.Accept6, model.AddrPort{Addr: a6, Port: p})
			}
		}
	}
	return fw
}

func TestRuleCountIndependentOfPairs(t *testing.T) {
	small, err := Build(manyPairs(10))
	if err != nil {
		t.Fatal(err)
	}
	big, err := Build(manyPairs(10000))
	if err != nil {
		t.Fatal(err)
	}
	if len(small.Rules) != len(big.Rules) || len(small.Chains) != len(big.Chains) || len(small.Sets) != len(big.Sets) {
		t.Fatalf("10 pairs: %d rules %d chains %d sets; 10000 pairs: %d rules %d chains %d sets",
			len(small.Rules), len(small.Chains), len(small.Sets), len(big.Rules), len(big.Chains), len(big.Sets))
	}
	if n := len(big.Sets[2].Elements) + len(big.Sets[3].Elements); n != 10000 {
		t.Fatalf("svc elements = %d, want 10000", n)
	}
	if len(small.Rules) != 7 {
		t.Fatalf("rules = %d, want the 6 input rules", len(small.Rules))
	}
}

// TestInputRuleExpressions checks the encoding against what nft 1.0.6
// generates for the same rules (nft --debug=netlink).
func TestInputRuleExpressions(t *testing.T) {
	tb := Table()
	sets := NewSets(tb)
	rules := InputRules(InputChain(tb), sets)
	if len(rules) != 7 {
		t.Fatalf("%d input rules", len(rules))
	}
	// ct state established,related accept comes first.
	if _, ok := rules[0].Exprs[0].(*expr.Ct); !ok {
		t.Errorf("rule 1 is not the conntrack rule: %s", dumpExprs(rules[0].Exprs))
	}
	// ip daddr . tcp dport @svc4 accept
	want := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: "svc4", SetID: sets.Svc4.ID},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
	if !reflect.DeepEqual(rules[1].Exprs, want) {
		t.Errorf("svc4 rule:\n got %s\nwant %s", dumpExprs(rules[1].Exprs), dumpExprs(want))
	}
	// ip6 daddr . tcp dport @svc6 accept: 16-byte address in reg 1, port in reg 2.
	if p := rules[2].Exprs[5].(*expr.Payload); p.DestRegister != unix.NFT_REG_2 || rules[2].Exprs[4].(*expr.Payload).Len != 16 {
		t.Errorf("svc6 rule registers: %s", dumpExprs(rules[2].Exprs))
	}
	// ip daddr @vip4 drop
	want = []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: "vip4", SetID: sets.VIP4.ID},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
	if !reflect.DeepEqual(rules[5].Exprs, want) {
		t.Errorf("vip4 drop rule:\n got %s\nwant %s", dumpExprs(rules[5].Exprs), dumpExprs(want))
	}
	// ICMP is accepted before the drop.
	if c := rules[3].Exprs[1].(*expr.Cmp); c.Data[0] != unix.IPPROTO_ICMP {
		t.Errorf("rule 4 is not the icmp rule: %s", dumpExprs(rules[3].Exprs))
	}
	if c := rules[4].Exprs[1].(*expr.Cmp); c.Data[0] != unix.IPPROTO_ICMPV6 {
		t.Errorf("rule 5 is not the icmpv6 rule: %s", dumpExprs(rules[4].Exprs))
	}
}

func TestTransparentRule(t *testing.T) {
	r := TransparentRule(PreroutingChain(Table()))
	want := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Socket{Key: expr.SocketKeyTransparent, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}},
		&expr.Immediate{Register: 1, Data: []byte{model.TProxyMark, 0, 0, 0}}, // host order (amd64)
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
	if !reflect.DeepEqual(r.Exprs, want) {
		t.Errorf("transparent rule:\n got %s\nwant %s", dumpExprs(r.Exprs), dumpExprs(want))
	}
}

func TestInterceptRule(t *testing.T) {
	ch := PreroutingChain(Table())
	tests := []struct {
		prefix string
		to     string
		match  string // expected prefix match, as dumpExprs renders it
		target string
	}{
		// Byte-aligned: load only the prefix bytes (nft does the same).
		{"10.0.0.0/8", "192.0.2.10", "Payload{base 1 off 16 len 1 reg 1} Cmp{[10]}", "Immediate{1 [192 0 2 10]} Immediate{2 [31 144]} TProxy{fam 2 addr 1 port 2}"},
		// Not byte-aligned: load the address and mask it.
		{"172.16.0.0/12", "", "Payload{base 1 off 16 len 4 reg 1} Bitwise{mask [255 240 0 0]} Cmp{[172 16 0 0]}", "Immediate{1 [31 144]} TProxy{fam 2 addr 0 port 1}"},
		{"192.0.2.7/32", "", "Payload{base 1 off 16 len 4 reg 1} Cmp{[192 0 2 7]}", "Immediate{1 [31 144]} TProxy{fam 2 addr 0 port 1}"},
		{"2001:db8:1::/48", "2001:db8::10", "Payload{base 1 off 24 len 6 reg 1} Cmp{[32 1 13 184 0 1]}", "Immediate{1 [32 1 13 184 0 0 0 0 0 0 0 0 0 0 0 16]} Immediate{2 [31 144]} TProxy{fam 10 addr 1 port 2}"},
		// /0 matches the family only.
		{"::/0", "", "", "Immediate{1 [31 144]} TProxy{fam 10 addr 0 port 1}"},
	}
	for _, tt := range tests {
		var to netip.Addr
		if tt.to != "" {
			to = netip.MustParseAddr(tt.to)
		}
		r := InterceptRule(ch, netip.MustParsePrefix(tt.prefix), 80, to, 8080)
		got := dumpExprs(r.Exprs)
		fam := "2"
		if strings.Contains(tt.prefix, ":") {
			fam = "10"
		}
		want := strings.Join(strings.Fields("Meta{15 reg 1} Cmp{["+fam+"]} "+tt.match+
			" Meta{16 reg 1} Cmp{[6]} Payload{base 2 off 2 len 2 reg 1} Cmp{[0 80]} "+tt.target+
			" Immediate{1 [1 0 0 0]} Meta{3 set reg 1} Verdict{1}"), " ")
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", tt.prefix, got, want)
		}
		// The reader recovers the intercept from the expressions.
		ic, err := parseIntercept(dumpedRule{chain: ChainPrerouting, exprs: r.Exprs})
		if err != nil {
			t.Errorf("%s: parse: %v", tt.prefix, err)
			continue
		}
		if ic.Prefix.String() != tt.prefix || ic.Port != 80 || ic.ToPort != 8080 || ic.To != to {
			t.Errorf("%s: parsed back as %+v", tt.prefix, ic)
		}
	}
}

// dumpExprs renders expressions compactly for comparisons in tests.
func dumpExprs(es []expr.Any) string {
	var out []string
	for _, e := range es {
		switch e := e.(type) {
		case *expr.Meta:
			if e.SourceRegister {
				out = append(out, fmt.Sprintf("Meta{%d set reg %d}", e.Key, e.Register))
			} else {
				out = append(out, fmt.Sprintf("Meta{%d reg %d}", e.Key, e.Register))
			}
		case *expr.Cmp:
			out = append(out, fmt.Sprintf("Cmp{%v}", e.Data))
		case *expr.Payload:
			out = append(out, fmt.Sprintf("Payload{base %d off %d len %d reg %d}", e.Base, e.Offset, e.Len, e.DestRegister))
		case *expr.Bitwise:
			out = append(out, fmt.Sprintf("Bitwise{mask %v}", e.Mask))
		case *expr.Immediate:
			out = append(out, fmt.Sprintf("Immediate{%d %v}", e.Register, e.Data))
		case *expr.TProxy:
			out = append(out, fmt.Sprintf("TProxy{fam %d addr %d port %d}", e.Family, e.RegAddr, e.RegPort))
		case *expr.Verdict:
			out = append(out, fmt.Sprintf("Verdict{%d}", e.Kind))
		default:
			out = append(out, fmt.Sprintf("%T%+v", e, e))
		}
	}
	return strings.Join(out, " ")
}

func TestPairElements(t *testing.T) {
	rs, err := Build(model.Firewall{
		Accept4: []model.AddrPort{{Addr: netip.MustParseAddr("192.0.2.10"), Port: 443}},
		Accept6: []model.AddrPort{{Addr: netip.MustParseAddr("2001:db8::10"), Port: 443}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// As nft encodes them: the address, then the port big-endian padded to 4 bytes.
	if got, want := rs.Sets[2].Elements[0].Key, []byte{192, 0, 2, 10, 0x01, 0xbb, 0, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("svc4 key %v, want %v", got, want)
	}
	if got := rs.Sets[3].Elements[0].Key; len(got) != 20 || got[16] != 0x01 || got[17] != 0xbb {
		t.Errorf("svc6 key %v", got)
	}
	if rs.Sets[2].Set.KeyType.Bytes != 8 || rs.Sets[3].Set.KeyType.Bytes != 20 || !rs.Sets[2].Set.Concatenation {
		t.Errorf("concat set types: %+v %+v", rs.Sets[2].Set.KeyType, rs.Sets[3].Set.KeyType)
	}
	var _ *nftables.Set = rs.Sets[0].Set
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		fw   model.Firewall
		want []string
	}{
		{model.Firewall{VIPs4: []netip.Addr{{}}}, []string{"vips4: address unset"}},
		{model.Firewall{Intercepts: []model.Intercept{{Port: 80, ToPort: 8080}}}, []string{"intercept: prefix unset"}},
		{model.Firewall{VIPs4: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}, []string{"vips4: 2001:db8::1 is not an IPv4 address"}},
		{model.Firewall{VIPs6: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}, []string{"vips6: 192.0.2.1 is not an IPv6 address"}},
		{model.Firewall{VIPs6: []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.1")}}, []string{"is not an IPv6 address"}},
		{model.Firewall{VIPs6: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}, []string{"has a zone"}},
		{model.Firewall{Accept4: []model.AddrPort{{Addr: netip.MustParseAddr("192.0.2.1"), Port: 0}}}, []string{"accept4 192.0.2.1: port 0 out of range"}},
		{model.Firewall{Accept6: []model.AddrPort{{Addr: netip.MustParseAddr("2001:db8::1"), Port: 65536}}}, []string{"port 65536 out of range"}},
		{model.Firewall{Intercepts: []model.Intercept{{Prefix: netip.MustParsePrefix("10.0.0.1/8"), Port: 80, ToPort: 8080}}}, []string{"host bits set (want 10.0.0.0/8)"}},
		{model.Firewall{Intercepts: []model.Intercept{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 80, ToAddr: netip.MustParseAddr("2001:db8::1"), ToPort: 8080}}}, []string{"is not an IPv4 address"}},
		{model.Firewall{Intercepts: []model.Intercept{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 80}}}, []string{"to: port 0"}},
		// Independent errors are all reported.
		{model.Firewall{VIPs4: []netip.Addr{{}}, VIPs6: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}, []string{"vips4", "vips6"}},
	}
	for _, tt := range tests {
		_, err := Build(tt.fw)
		if err == nil {
			t.Errorf("%+v: no error", tt.fw)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not mention %q", tt.fw, err, w)
			}
		}
		// The fake rejects the same input and keeps nothing.
		var f Fake
		if err := f.Apply(tt.fw); err == nil {
			t.Errorf("fake accepted %+v", tt.fw)
		}
		if _, ok, _ := f.Read(); ok {
			t.Errorf("fake has a table after a failed apply")
		}
	}
}

// TestRenderGolden pins the nft-syntax rendering of the fixture. The same
// file is loaded with `nft -f` by TestKernelMatchesNft and compared with
// what Apply programs.
func TestRenderGolden(t *testing.T) {
	got, err := Render(fixture())
	if err != nil {
		t.Fatal(err)
	}
	const path = "testdata/fixture.nft"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("Render(fixture) differs from %s (run with -update to accept):\n%s", path, got)
	}
}

func TestFake(t *testing.T) {
	var f Fake
	if got := f.String(); got != "no table inet lbctl\n" {
		t.Fatalf("empty fake: %q", got)
	}
	if err := f.Delete(); err != nil {
		t.Fatalf("delete of nothing: %v", err)
	}
	in := fixture()
	in.VIPs4 = []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.10")}
	if err := f.Apply(in); err != nil {
		t.Fatal(err)
	}
	got, ok, err := f.Read()
	if err != nil || !ok || !reflect.DeepEqual(got, fixture()) {
		t.Fatalf("Read = %+v %v %v", got, ok, err)
	}
	golden, _ := os.ReadFile("testdata/fixture.nft")
	if f.String() != string(golden) {
		t.Fatalf("fake String:\n%s", f.String())
	}
	boom := errors.New("boom")
	f.FailApply = boom
	if err := f.Apply(model.Firewall{}); !errors.Is(err, boom) {
		t.Fatalf("FailApply: %v", err)
	}
	if got, _, _ := f.Read(); !reflect.DeepEqual(got, fixture()) || f.Applies != 1 {
		t.Fatalf("failed apply changed the fake: %+v (applies %d)", got, f.Applies)
	}
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := f.Read(); ok {
		t.Fatal("table still there after Delete")
	}
}
