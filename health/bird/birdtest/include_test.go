package birdtest

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/health/bird"
)

func TestParseIncludeRoundTrip(t *testing.T) {
	ps := []netip.Prefix{netip.MustParsePrefix("192.0.2.11/32"), netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("192.0.2.0/28")}
	back, _, err := parseInclude(bird.RenderInclude(ps))
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28"), netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("192.0.2.11/32")}
	if err != nil || !slices.Equal(back, want) {
		t.Errorf("round trip: %v, %v", back, err)
	}
}

func TestParseIncludeErrors(t *testing.T) {
	for _, tt := range []struct{ in, err string }{
		{"route 192.0.2.1/32 unreachable;\n", "line 1: not a blackhole route"},
		{"# c\nroute 192.0.2.300/32 blackhole;\n", "line 2: netip.ParsePrefix"},
		{"route 192.0.2.1/32 blackhole\n", "line 1: not a blackhole route"},
	} {
		_, _, err := parseInclude([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: got %v, want %q", tt.in, err, tt.err)
		}
	}
}
