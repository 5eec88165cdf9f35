package dns

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// lookupCase is shared by the zone, client and cache tests: each resolver
// serving testdata/example.org.zone must give the same answers.
type lookupCase struct {
	name    string
	want    []netip.Addr
	wantErr error  // matched with errors.Is
	errText string // substring of the error
}

var zoneCases = []lookupCase{
	{name: "www.example.org", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")},
	{name: "www.example.org.", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")},
	{name: "WWW.Example.ORG", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")},
	{name: "mixed.case.example.org", want: addrs("198.51.100.7")},
	{name: "v6only.example.org", want: addrs("2001:db8::20")},
	{name: "example.org", wantErr: ErrNotFound, errText: "no A or AAAA records"},
	{name: "alias.example.org", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")},
	{name: "alias2.example.org", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")},
	{name: "vip1.lb.example.org", want: addrs("192.0.2.80", "2001:db8::80")},
	{name: "missing.example.org", wantErr: ErrNotFound, errText: "missing.example.org: no such name"},
	{name: "mx-only.example.org", wantErr: ErrNotFound, errText: "no A or AAAA records"},
	{name: "txt.example.org", wantErr: ErrNotFound},
	{name: "loop1.example.org", wantErr: ErrCNAMELoop, errText: "loop1.example.org. -> loop2.example.org. -> loop1.example.org."},
}

func checkLookup(t *testing.T, r Resolver, tc lookupCase) {
	t.Helper()
	got, err := r.Lookup(context.Background(), tc.name)
	if tc.wantErr != nil || tc.errText != "" {
		if err == nil {
			t.Errorf("Lookup(%q) = %v, want error %v", tc.name, got, tc.wantErr)
			return
		}
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("Lookup(%q) error %q does not wrap %v", tc.name, err, tc.wantErr)
		}
		if !strings.Contains(err.Error(), tc.errText) {
			t.Errorf("Lookup(%q) error %q, want it to contain %q", tc.name, err, tc.errText)
		}
		return
	}
	if err != nil {
		t.Errorf("Lookup(%q): %v", tc.name, err)
		return
	}
	if !slices.Equal(got, tc.want) {
		t.Errorf("Lookup(%q) = %v, want %v", tc.name, got, tc.want)
	}
}

func loadTestZone(t *testing.T) *Zone {
	t.Helper()
	z, err := LoadZone("testdata/example.org.zone")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestZoneLookup(t *testing.T) {
	z := loadTestZone(t)
	cases := append(slices.Clone(zoneCases),
		lookupCase{name: "ext.example.org", wantErr: ErrNotFound, errText: "ext.example.org: no such name via ext.example.org. -> edge.example.net."},
		lookupCase{name: "foo.apps.example.org", want: addrs("203.0.113.5")},
		lookupCase{name: "a.b.apps.example.org", want: addrs("203.0.113.5")},
		lookupCase{name: "exists.apps.example.org", wantErr: ErrNotFound, errText: "no A or AAAA records"},
		lookupCase{name: "apps.example.org", wantErr: ErrNotFound, errText: "no such name"},
		lookupCase{name: "lb.example.org", wantErr: ErrNotFound, errText: "no such name"},
		lookupCase{name: "", errText: "empty name"},
		lookupCase{name: "a..b", errText: "invalid name"},
	)
	for _, tc := range cases {
		checkLookup(t, z, tc)
	}
	var _ Resolver = z
}

func TestZoneLookupCanceled(t *testing.T) {
	z := loadTestZone(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := z.Lookup(ctx, "www.example.org"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lookup with a canceled context: %v", err)
	}
}

func TestParseZoneOrigin(t *testing.T) {
	// No $ORIGIN: the origin argument applies to relative names.
	in := "$TTL 60\nweb IN A 192.0.2.1\nweb IN CNAME x\n"
	if _, err := ParseZone("z", strings.NewReader(in), "example.com"); err == nil ||
		!strings.Contains(err.Error(), "z: web.example.com.: CNAME and address records at the same name") {
		t.Errorf("CNAME beside A: %v", err)
	}
	z, err := ParseZone("z", strings.NewReader("web 60 IN A 192.0.2.1\n"), "Example.COM")
	if err != nil {
		t.Fatal(err)
	}
	checkLookup(t, z, lookupCase{name: "web.example.com", want: addrs("192.0.2.1")})
	if got := z.Names(); !slices.Equal(got, []string{"web.example.com."}) {
		t.Errorf("Names() = %v", got)
	}
	// A long chain is refused like a loop.
	var b strings.Builder
	for i := range 10 {
		b.WriteString("c" + string(rune('0'+i)) + " IN CNAME c" + string(rune('1'+i)) + "\n")
	}
	b.WriteString("c: IN A 192.0.2.9\n")
	z, err = ParseZone("z", strings.NewReader(b.String()), "example.com.")
	if err != nil {
		t.Fatal(err)
	}
	checkLookup(t, z, lookupCase{name: "c0.example.com", wantErr: ErrCNAMELoop})
	checkLookup(t, z, lookupCase{name: "c4.example.com", want: addrs("192.0.2.9")})
}

func TestParseZoneErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"bad address", "$ORIGIN example.org.\nwww IN A 192.0.2.300\n", `z.zone:2:20: bad A A at "192.0.2.300"`},
		{"unknown type", "$ORIGIN example.org.\n\nwww IN BOGUS x\n", `z.zone:3:`},
		{"unterminated parenthesis", "$ORIGIN example.org.\n@ IN SOA ns1 hostmaster (1 2 3 4 5\n", `z.zone:2:`},
		{"bad ttl directive", "$TTL forever\n", `z.zone:1:`},
		{"several cnames", "$ORIGIN example.org.\na IN CNAME b\na IN CNAME c\n", "z.zone: a.example.org.: several CNAME records (b.example.org. and c.example.org.)"},
		{"cname and mx", "$ORIGIN example.org.\na IN MX 10 b\na IN CNAME c\n", "z.zone: a.example.org.: CNAME and MX records at the same name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, err := ParseZone("z.zone", strings.NewReader(tc.in), "")
			if err == nil {
				t.Fatalf("no error; names %v", z.Names())
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadZoneInclude(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.zone")
	sub := filepath.Join(dir, "sub.zone")
	if err := os.WriteFile(main, []byte("$ORIGIN example.org.\n$TTL 60\n$INCLUDE sub.zone\nwww IN A 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sub, []byte("api IN A 192.0.2.2\n\napi IN AAAA not-an-address\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadZone(main)
	if err == nil || !strings.Contains(err.Error(), sub+":3:") {
		t.Fatalf("error in an included file: %v, want it at %s:3", err, sub)
	}
	if err := os.WriteFile(sub, []byte("api IN A 192.0.2.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	z, err := LoadZone(main)
	if err != nil {
		t.Fatal(err)
	}
	checkLookup(t, z, lookupCase{name: "api.example.org", want: addrs("192.0.2.2")})
	checkLookup(t, z, lookupCase{name: "www.example.org", want: addrs("192.0.2.1")})
	if _, err := LoadZone(filepath.Join(dir, "none.zone")); err == nil || !strings.Contains(err.Error(), "none.zone") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLookupHostAndChain(t *testing.T) {
	z := loadTestZone(t)
	ctx := context.Background()
	for in, want := range map[string][]netip.Addr{
		"192.0.2.77":      addrs("192.0.2.77"),
		"2001:db8::1":     addrs("2001:db8::1"),
		"www.example.org": addrs("192.0.2.10", "192.0.2.11", "2001:db8::10"),
	} {
		got, err := LookupHost(ctx, z, in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("LookupHost(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	override, err := ParseZone("override", strings.NewReader("www 60 IN A 192.0.2.99\nloop1 60 IN A 192.0.2.98\n"), "example.org.")
	if err != nil {
		t.Fatal(err)
	}
	r := Chain(override, z)
	checkLookup(t, r, lookupCase{name: "www.example.org", want: addrs("192.0.2.99")})
	checkLookup(t, r, lookupCase{name: "v6only.example.org", want: addrs("2001:db8::20")})
	checkLookup(t, r, lookupCase{name: "nowhere.example.org", wantErr: ErrNotFound})
	// A hard error of the first resolver is not hidden by the second.
	checkLookup(t, Chain(z, override), lookupCase{name: "loop1.example.org", wantErr: ErrCNAMELoop})
}
