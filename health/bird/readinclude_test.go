package bird

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ReadInclude reads back what renderInclude wrote, with and without the
// graceful shutdown mark; a missing file is no route; a foreign line is an
// error naming the file and line.
func TestReadInclude(t *testing.T) {
	dir := t.TempDir()
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::10/128")}
	for _, gshut := range []bool{false, true} {
		path := filepath.Join(dir, "vips.conf")
		if err := os.WriteFile(path, renderInclude(want, gshut), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadInclude(path)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("gshut %v: %v, %v; want %v", gshut, got, err, want)
		}
	}
	if got, err := ReadInclude(filepath.Join(dir, "none.conf")); err != nil || len(got) != 0 {
		t.Errorf("missing file: %v, %v", got, err)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte(includeHeader+"route 192.0.2.10/32 blackhole;\nprotocol x {}\n"), 0o644)
	if _, err := ReadInclude(bad); err == nil || !strings.Contains(err.Error(), "bad.conf:3") {
		t.Errorf("foreign line: %v, want an error at bad.conf:3", err)
	}
}
