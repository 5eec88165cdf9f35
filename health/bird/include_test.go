package bird

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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

// TestRenderIncludeGracefulShutdown: with graceful shutdown every route
// carries GRACEFUL_SHUTDOWN, and BIRD accepts the file in a static
// protocol.
func TestRenderIncludeGracefulShutdown(t *testing.T) {
	got := string(renderInclude(prefixes(t, "192.0.2.10/32", "192.0.2.11/32"), true))
	want := includeHeader +
		"route 192.0.2.10/32 blackhole { bgp_community.add((65535,0)); };\n" +
		"route 192.0.2.11/32 blackhole { bgp_community.add((65535,0)); };\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	bin, err := exec.LookPath("bird")
	if err != nil {
		t.Skip("bird not installed")
	}
	dir := t.TempDir()
	inc := filepath.Join(dir, "a4.conf")
	conf := filepath.Join(dir, "bird.conf")
	os.WriteFile(inc, []byte(got), 0o644)
	os.WriteFile(conf, []byte("router id 192.0.2.1;\nprotocol static vips4 {\n\tipv4;\n\tinclude \""+inc+"\";\n}\n"), 0o644)
	if out, err := exec.Command(bin, "-p", "-c", conf).CombinedOutput(); err != nil {
		t.Errorf("bird -p: %v\n%s", err, out)
	}
}
