package nft

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/nft/nftspec"
	"github.com/lbctl/lbctl/test/netnstest"
)

// fixture exercises every kind of element and rule (canonical form).
func fixture() model.Firewall {
	return model.Firewall{
		VIPs4: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")},
		VIPs6: []netip.Addr{netip.MustParseAddr("2001:db8::10")},
		Accept4: []model.AddrPort{
			{Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}, {Addr: netip.MustParseAddr("192.0.2.10"), Port: 443}, {Addr: netip.MustParseAddr("192.0.2.11"), Port: 443},
		},
		Accept6:     []model.AddrPort{{Addr: netip.MustParseAddr("2001:db8::10"), Port: 443}},
		Transparent: true,
		Intercepts: []model.Intercept{
			{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 80, ToAddr: netip.MustParseAddr("192.0.2.10"), ToPort: 8080},
			{Prefix: netip.MustParsePrefix("172.16.0.0/12"), Port: 443, ToPort: 8443},
			{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Port: 80, ToAddr: netip.MustParseAddr("2001:db8::10"), ToPort: 8080},
		},
		Handoff: &model.Handoff{
			Port: model.HandoffPort, MSS: model.HandoffMSS,
			Peers4:    []netip.Addr{netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.13")},
			Backends4: []model.AddrPort{{Addr: netip.MustParseAddr("203.0.113.61"), Port: 3200}},
		},
	}
}

// kernelIn returns a Kernel working in a fresh namespace.
func kernelIn(t *testing.T, name string) (*Kernel, *netnstest.NS) {
	t.Helper()
	ns := netnstest.New(t, "nft-"+name)
	k, err := New(WithNetNS(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return k, ns
}

func mustRead(t *testing.T, k *Kernel) model.Firewall {
	t.Helper()
	fw, ok, err := k.Read()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("table inet lbctl does not exist")
	}
	return fw
}

func mustGen(t *testing.T, k *Kernel) uint32 {
	t.Helper()
	g, err := k.Generation()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// kernelRules counts the rules of the table in the kernel.
func kernelRules(t *testing.T, ns *netnstest.NS) int {
	t.Helper()
	n := 0
	for _, ch := range []string{ChainInput, ChainPrerouting} {
		rules, err := dumpRules(ns.Fd(), ch)
		if err != nil {
			t.Fatal(err)
		}
		n += len(rules)
	}
	return n
}

func listTable(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	return ns.Exec(t, "nft", "list", "table", "inet", model.NFTTable)
}

func TestKernelApplyReadIdempotent(t *testing.T) {
	k, ns := kernelIn(t, "apply")
	if _, ok, err := k.Read(); err != nil || ok {
		t.Fatalf("fresh namespace: Read = exists %v, %v", ok, err)
	}
	want := fixture()
	g0 := mustGen(t, k)
	if err := k.Apply(want); err != nil {
		t.Fatal(err)
	}
	if g := mustGen(t, k); g != g0+1 {
		t.Fatalf("apply committed %d batches, want 1", g-g0)
	}
	got := mustRead(t, k)
	if d := nftspec.Diff(want, got); len(d) > 0 {
		t.Fatalf("diff after apply:\n%s\n%s", strings.Join(d, "\n"), listTable(t, ns))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Read is not canonical:\n%+v\nwant\n%+v", got, want)
	}
	first := listTable(t, ns)

	// A second apply of the same firewall is one more batch and changes
	// nothing visible.
	if err := k.Apply(want); err != nil {
		t.Fatal(err)
	}
	if g := mustGen(t, k); g != g0+2 {
		t.Fatalf("second apply: generation %d, want %d", g, g0+2)
	}
	if d := nftspec.Diff(want, mustRead(t, k)); len(d) > 0 {
		t.Fatalf("diff after second apply: %v", d)
	}
	if second := listTable(t, ns); second != first {
		t.Fatalf("listing changed by an identical apply:\n%s\n---\n%s", first, second)
	}

	// Apply replaces: elements and rules of the old table are gone.
	small := model.Firewall{VIPs4: []netip.Addr{netip.MustParseAddr("192.0.2.99")}, Accept4: []model.AddrPort{{Addr: netip.MustParseAddr("192.0.2.99"), Port: 25}}}
	if err := k.Apply(small); err != nil {
		t.Fatal(err)
	}
	if d := nftspec.Diff(small, mustRead(t, k)); len(d) > 0 {
		t.Fatalf("diff after replacing: %v\n%s", d, listTable(t, ns))
	}
	if n := kernelRules(t, ns); n != 7 {
		t.Fatalf("%d rules after replacing with a non-transparent firewall, want 6", n)
	}
	if err := k.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := k.Read(); err != nil || ok {
		t.Fatalf("after Delete: exists %v, %v", ok, err)
	}
	if err := k.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

// TestKernelMatchesNft cross-checks with the reference tool: the table
// Apply programs and the one `nft -f testdata/fixture.nft` programs list
// identically, and Read understands the table nft made.
func TestKernelMatchesNft(t *testing.T) {
	k, nsGo := kernelIn(t, "xgo")
	if err := k.Apply(fixture()); err != nil {
		t.Fatal(err)
	}
	nsNft := netnstest.New(t, "nft-xref")
	path, err := filepath.Abs("testdata/fixture.nft")
	if err != nil {
		t.Fatal(err)
	}
	nsNft.Exec(t, "nft", "-f", path)

	goJSON := canonicalJSON(t, nsGo.Exec(t, "nft", "-j", "list", "table", "inet", model.NFTTable))
	nftJSON := canonicalJSON(t, nsNft.Exec(t, "nft", "-j", "list", "table", "inet", model.NFTTable))
	if goJSON != nftJSON {
		t.Fatalf("Apply and nft -f differ.\nApply:\n%s\nnft -f:\n%s", listTable(t, nsGo), listTable(t, nsNft))
	}
	if a, b := listTable(t, nsGo), listTable(t, nsNft); sortedLines(a) != sortedLines(b) {
		t.Fatalf("text listings differ:\n%s\n---\n%s", a, b)
	}
	kn, err := New(WithNetNS(nsNft.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if d := nftspec.Diff(fixture(), mustRead(t, kn)); len(d) > 0 {
		t.Fatalf("Read of the nft-made table: %v", d)
	}
}

// canonicalJSON drops handles (they depend on history) and sorts set
// elements (their listing order depends on the hash seed).
func canonicalJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("nft -j output: %v\n%s", err, s)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			delete(v, "handle")
			delete(v, "metainfo")
			for k, x := range v {
				v[k] = walk(x)
			}
			if elems, ok := v["elem"].([]any); ok {
				slices.SortFunc(elems, func(a, b any) int {
					ja, _ := json.Marshal(a)
					jb, _ := json.Marshal(b)
					return strings.Compare(string(ja), string(jb))
				})
			}
		case []any:
			for i, x := range v {
				v[i] = walk(x)
			}
		}
		return v
	}
	b, _ := json.MarshalIndent(walk(v), "", " ")
	return string(b)
}

func sortedLines(s string) string {
	l := strings.Fields(strings.NewReplacer(",", " ", "{", " ", "}", " ").Replace(s))
	slices.Sort(l)
	return strings.Join(l, " ")
}

// TestKernelScale: 10,000 VIP:port pairs take as many rules as 10, and one
// replacement of the table is one batch (one generation).
func TestKernelScale(t *testing.T) {
	k, ns := kernelIn(t, "scale")
	counts := map[int]int{}
	for _, n := range []int{10, 10000} {
		fw := manyPairs(n)
		g0 := mustGen(t, k)
		start := time.Now()
		if err := k.Apply(fw); err != nil {
			t.Fatalf("%d pairs: %v", n, err)
		}
		took := time.Since(start)
		batches := mustGen(t, k) - g0
		if batches != 1 {
			t.Fatalf("%d pairs: apply committed %d batches, want 1", n, batches)
		}
		start = time.Now()
		got := mustRead(t, k)
		readTook := time.Since(start)
		if d := nftspec.Diff(fw, got); len(d) > 0 {
			t.Fatalf("%d pairs: %d differences, first %v", n, len(d), d[:min(5, len(d))])
		}
		if len(got.Accept4)+len(got.Accept6) != n {
			t.Fatalf("%d pairs: read back %d", n, len(got.Accept4)+len(got.Accept6))
		}
		counts[n] = kernelRules(t, ns)
		rs, _ := Build(fw)
		msgs := 3 + len(rs.Chains) + len(rs.Rules)
		for _, s := range rs.Sets {
			msgs += 1 + (len(s.Elements)+elementsPerMessage-1)/elementsPerMessage
		}
		t.Logf("BENCH pairs=%d vips=%d rules=%d batches=%d messages=%d apply=%v read=%v",
			n, len(fw.VIPs4)+len(fw.VIPs6), counts[n], batches, msgs, took.Round(time.Microsecond), readTook.Round(time.Microsecond))
	}
	// Replacing a full table with another full one (the common case).
	g0 := mustGen(t, k)
	start := time.Now()
	if err := k.Apply(manyPairs(10000)); err != nil {
		t.Fatal(err)
	}
	t.Logf("BENCH re-apply pairs=10000 over 10000: apply=%v batches=%d", time.Since(start).Round(time.Microsecond), mustGen(t, k)-g0)
	if counts[10] != counts[10000] {
		t.Fatalf("rule count: %d for 10 pairs, %d for 10000", counts[10], counts[10000])
	}
}

// TestKernelAtomic: a batch the kernel rejects at its last message leaves
// the previous table exactly as it was.
func TestKernelAtomic(t *testing.T) {
	k, ns := kernelIn(t, "atomic")
	good := fixture()
	if err := k.Apply(good); err != nil {
		t.Fatal(err)
	}
	before := listTable(t, ns)
	beforeJSON := ns.Exec(t, "nft", "-j", "list", "table", "inet", model.NFTTable)
	next := manyPairs(100) // a different, valid table in front of the bad message
	cases := []struct {
		name string
		bad  func(c *nftables.Conn, rs *Ruleset)
	}{
		{"element with a 3-byte ipv4_addr key", func(c *nftables.Conn, rs *Ruleset) {
			if err := c.SetAddElements(rs.Sets[0].Set, []nftables.SetElement{{Key: []byte{192, 0, 2}}}); err != nil {
				t.Error(err)
			}
		}},
		{"rule using a set that does not exist", func(c *nftables.Conn, rs *Ruleset) {
			ch := rs.Chains[0]
			c.AddRule(&nftables.Rule{Table: rs.Table, Chain: ch, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Lookup{SourceRegister: 1, SetName: "nosuchset"},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g0 := mustGen(t, k)
			bad := *k
			bad.beforeFlush = tc.bad
			err := bad.Apply(next)
			if err == nil {
				t.Fatal("apply with a bad last message succeeded")
			}
			t.Logf("kernel refused: %v", err)
			if g := mustGen(t, k); g != g0 {
				t.Errorf("generation moved from %d to %d: something was committed", g0, g)
			}
			if after := listTable(t, ns); after != before {
				t.Fatalf("table changed by a failed apply:\n%s\n---\n%s", before, after)
			}
			if after := ns.Exec(t, "nft", "-j", "list", "table", "inet", model.NFTTable); after != beforeJSON {
				t.Fatalf("table changed (handles included) by a failed apply")
			}
			got := mustRead(t, k)
			if d := nftspec.Diff(good, got); len(d) > 0 {
				t.Fatalf("old table not intact: %v", d)
			}
		})
	}
}

// TestKernelOtherTablesUntouched: Apply and Delete never change a table
// lbctl does not own, even one named lbctl in another family.
func TestKernelOtherTablesUntouched(t *testing.T) {
	k, ns := kernelIn(t, "other")
	other := filepath.Join(t.TempDir(), "other.nft")
	if err := os.WriteFile(other, []byte(`table ip other {
	set s { type ipv4_addr; elements = { 198.51.100.7 } }
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr @s tcp dport 22 accept
	}
}
table ip lbctl {
	chain c { tcp dport 9 drop; }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.Exec(t, "nft", "-f", other)
	list := func() string {
		return ns.Exec(t, "nft", "list", "table", "ip", "other") + ns.Exec(t, "nft", "list", "table", "ip", "lbctl")
	}
	before := list()
	if err := k.Apply(fixture()); err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(manyPairs(50)); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != before {
		t.Fatalf("Apply changed other tables:\n%s\n---\n%s", before, got)
	}
	if err := k.Delete(); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != before {
		t.Fatalf("Delete changed other tables:\n%s\n---\n%s", before, got)
	}
	tables := ns.Exec(t, "nft", "list", "tables")
	if strings.Contains(tables, "inet lbctl") || !strings.Contains(tables, "ip other") || !strings.Contains(tables, "ip lbctl") {
		t.Fatalf("tables after Delete:\n%s", tables)
	}
}

// TestKernelDrift: changes made behind lbctl's back show up in Read, as
// drift (rules) or as a diff (elements), and the next Apply repairs them.
func TestKernelDrift(t *testing.T) {
	k, ns := kernelIn(t, "drift")
	want := fixture()
	if err := k.Apply(want); err != nil {
		t.Fatal(err)
	}
	ns.Exec(t, "nft", "delete", "element", "inet", "lbctl", "vip4", "{ 192.0.2.11 }")
	if d := nftspec.Diff(want, mustRead(t, k)); !reflect.DeepEqual(d, []string{"vip4: missing 192.0.2.11"}) {
		t.Fatalf("after deleting an element: %v", d)
	}
	ns.Exec(t, "nft", "add", "rule", "inet", "lbctl", "input", "tcp", "dport", "22", "accept")
	_, ok, err := k.Read()
	if !ok || !errors.Is(err, nftspec.ErrDrift) {
		t.Fatalf("after adding a rule: exists %v, err %v; want nftspec.ErrDrift", ok, err)
	}
	t.Logf("drift reported: %v", err)
	ns.Exec(t, "nft", "add", "chain", "inet", "lbctl", "extra")
	if _, _, err := k.Read(); !errors.Is(err, nftspec.ErrDrift) || !strings.Contains(err.Error(), "unexpected chain extra") {
		t.Fatalf("after adding a chain: %v", err)
	}
	if err := k.Apply(want); err != nil {
		t.Fatal(err)
	}
	if d := nftspec.Diff(want, mustRead(t, k)); len(d) > 0 {
		t.Fatalf("apply did not repair: %v", d)
	}
}
