package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/sign"
)

// lbctl build sets an expiry 30 days after the creation time unless
// --expires says otherwise; no expiry must be asked for.
func TestBuildExpiry(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "site")
	keygen(t, key)
	pub, err := sign.LoadPublicKey(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	tree := campusCopy(t)
	created := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	expiry := func(args ...string) *time.Time {
		t.Helper()
		out := filepath.Join(dir, "b.bundle")
		args = append([]string{"build", tree, "-o", out, "--key", key + ".key", "--serial", "1", "--time", created.Format(time.RFC3339)}, args...)
		if _, stderr, code := run(t, args...); code != 0 {
			t.Fatalf("build %q: %d %s", args, code, stderr)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, err := archive.Read(f, sign.NewTrust(pub), time.Now(), archive.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return b.Manifest.Expires
	}
	for _, c := range []struct {
		args []string
		want time.Duration // 0: no expiry
	}{
		{nil, 30 * 24 * time.Hour},
		{[]string{"--expires", "7d"}, 7 * 24 * time.Hour},
		{[]string{"--expires", "36h"}, 36 * time.Hour},
		{[]string{"--expires", "never"}, 0},
		{[]string{"--expires", "0"}, 0},
	} {
		got := expiry(c.args...)
		switch {
		case c.want == 0 && got != nil:
			t.Errorf("%q: expires %s, want never", c.args, got)
		case c.want != 0 && (got == nil || !got.Equal(created.Add(c.want))):
			t.Errorf("%q: expires %v, want %s", c.args, got, created.Add(c.want))
		}
	}
	// The default is shown, and a bundle that would be expired already is
	// not written.
	out := filepath.Join(dir, "old.bundle")
	_, stderr, code := run(t, "build", tree, "-o", out, "--key", key+".key", "--time", "1700000000")
	if code != 1 || !strings.Contains(stderr, "would be expired already") || !strings.Contains(stderr, "--expires never") {
		t.Fatalf("build with an old --time: %d %q", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("an expired bundle was written: %v", err)
	}
	if _, stderr, code := run(t, "build", tree, "-o", out, "--key", key+".key", "--expires", "soon"); code != 2 || !strings.Contains(stderr, `--expires "soon"`) {
		t.Fatalf("bad --expires: %d %q", code, stderr)
	}
	stdout, _, code := run(t, "build", tree, "-o", out, "--key", key+".key")
	if code != 0 || !strings.Contains(stdout, "expires 20") || strings.Contains(stdout, "expires never") {
		t.Fatalf("build output does not show the default expiry: %d %q", code, stdout)
	}
}
