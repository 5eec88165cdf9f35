package bird

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestRenderInclude(t *testing.T) {
	got := string(RenderInclude(prefixes(t, "192.0.2.11/32", "192.0.2.10/32", "192.0.2.11/32", "192.0.2.0/28")))
	want := includeHeader +
		"route 192.0.2.0/28 blackhole;\n" +
		"route 192.0.2.10/32 blackhole;\n" +
		"route 192.0.2.11/32 blackhole;\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := string(RenderInclude(nil)); got != includeHeader {
		t.Errorf("empty: got %q", got)
	}
}

func TestSplitFamilies(t *testing.T) {
	v4, v6, err := SplitFamilies(prefixes(t, "2001:db8::10/128", "192.0.2.11/32", "192.0.2.10/32", "2001:db8::10/128"))
	if err != nil || !slices.Equal(v4, prefixes(t, "192.0.2.10/32", "192.0.2.11/32")) || !slices.Equal(v6, prefixes(t, "2001:db8::10/128")) {
		t.Errorf("got %v %v %v", v4, v6, err)
	}
	_, _, err = SplitFamilies([]netip.Prefix{netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("::ffff:192.0.2.1/128"), {}})
	for _, want := range []string{"192.0.2.10/24: host bits set (want 192.0.2.0/24)", "IPv4-mapped", "invalid prefix"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}
