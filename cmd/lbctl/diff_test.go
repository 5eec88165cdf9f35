package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// diffBundles builds two signed bundles of examples/campus, the second
// with change applied to the tree; it returns them and the public key.
func diffBundles(t *testing.T, change func(tree string)) (old, new, pub string) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "site")
	keygen(t, key)
	tree := campusCopy(t)
	old, new = filepath.Join(dir, "old.bundle"), filepath.Join(dir, "new.bundle")
	for i, out := range []string{old, new} {
		if i == 1 {
			change(tree)
		}
		if _, stderr, code := run(t, "build", tree, "-o", out, "--key", key+".key", "--serial", []string{"1", "2"}[i], "--expires", "never"); code != 0 {
			t.Fatalf("build: %d %s", code, stderr)
		}
	}
	return old, new, key + ".pub"
}

// TestDiffExitCode: one VIP's haproxy.cfg changes (a service's balance
// algorithm: the VIP's part of the model stays the same): diff --exit-code
// exits 1 and its summary names the VIP; the identical change of both nodes
// is printed once, naming them; --json parses.
func TestDiffExitCode(t *testing.T) {
	old, new, pub := diffBundles(t, func(tree string) {
		wiki := filepath.Join(tree, "web", "wiki.yaml")
		src, _ := os.ReadFile(wiki)
		os.WriteFile(wiki, []byte(strings.Replace(string(src), "balance: source", "balance: leastconn", 1)), 0o644)
	})
	out, stderr, code := run(t, "diff", "--exit-code", "--pubkey", pub, old, new)
	if code != 1 {
		t.Fatalf("diff --exit-code: exit %d, want 1 (%s)", code, stderr)
	}
	for _, want := range []string{"vips:     1 changed\n          ~192.0.2.11\n", "services: 1 changed\n          ~web/wiki\n",
		"diff lb1 lb2: vips/192.0.2.11/haproxy.cfg\n--- a/vips/192.0.2.11/haproxy.cfg\n+++ b/vips/192.0.2.11/haproxy.cfg\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "+    balance leastconn"); n != 1 {
		t.Errorf("the change is printed %d times, want once for both nodes", n)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour escapes in output that is no terminal")
	}

	out, _, code = run(t, "diff", old, new, "--pubkey", pub, "--json", "--exit-code")
	var r struct {
		Format  int  `json:"format"`
		Changed bool `json:"changed"`
		Counts  struct {
			VIPs struct{ Changed int } `json:"vips"`
		} `json:"counts"`
		VIPs  struct{ Changed []string } `json:"vips"`
		Files []struct {
			Path    string   `json:"path"`
			Nodes   []string `json:"nodes"`
			VIP     string   `json:"vip"`
			Unified string   `json:"unified"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != 1 || r.Format != 1 || !r.Changed || r.Counts.VIPs.Changed != 1 || len(r.VIPs.Changed) != 1 || r.VIPs.Changed[0] != "192.0.2.11" ||
		len(r.Files) != 1 || r.Files[0].VIP != "192.0.2.11" || strings.Join(r.Files[0].Nodes, ",") != "lb1,lb2" || !strings.Contains(r.Files[0].Unified, "+    balance leastconn") {
		t.Errorf("--json (exit %d): %+v", code, r)
	}

	out, _, _ = run(t, "diff", old, new, "--pubkey", pub, "--summary", "--color", "always")
	if !strings.Contains(out, "\x1b[33m~192.0.2.11\x1b[m") || strings.Contains(out, "@@") {
		t.Errorf("--summary --color always:\n%q", out)
	}

	out, _, code = run(t, "diff", old, new, "--pubkey", pub, "--stat")
	if code != 0 || !strings.Contains(out, " vips/192.0.2.11/haproxy.cfg (lb1, lb2) |     2 +-\n") || strings.Contains(out, "@@") {
		t.Errorf("--stat (exit %d):\n%s", code, out)
	}
}

// TestDiffExitStatuses: 0 when nothing changes, 2 for usage; a bundle
// that cannot be read or verified exits 1 like any failed command, and 3
// with --exit-code, where 1 means "changes".
func TestDiffExitStatuses(t *testing.T) {
	old, _, pub := diffBundles(t, func(string) {})
	out, stderr, code := run(t, "diff", "--exit-code", "--pubkey", pub, old, old)
	if code != 0 || !strings.Contains(out, "vips:     unchanged\n") || !strings.Contains(out, "files:    unchanged\n") {
		t.Errorf("same bundle: exit %d %s\n%s", code, stderr, out)
	}
	if _, _, code := run(t, "diff", "--exit-code", "--pubkey", pub, old); code != 2 {
		t.Errorf("one argument: exit %d, want 2", code)
	}
	if _, _, code := run(t, "diff", "--pubkey", pub, "--color", "sometimes", old, old); code != 2 {
		t.Errorf("--color sometimes: exit %d, want 2", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.bundle")
	os.WriteFile(bad, []byte("not a bundle"), 0o644)
	if _, stderr, code := run(t, "diff", "--exit-code", "--pubkey", pub, old, bad); code != 3 || !strings.Contains(stderr, "bad.bundle") {
		t.Errorf("bad bundle, --exit-code: exit %d, want 3: %s", code, stderr)
	}
	if _, stderr, code := run(t, "diff", "--pubkey", pub, old, bad); code != 1 || !strings.Contains(stderr, "bad.bundle") {
		t.Errorf("bad bundle: exit %d, want 1: %s", code, stderr)
	}
}

// TestDiffColor: colour on a terminal unless NO_COLOR or TERM=dumb;
// --color always and never override.
func TestDiffColor(t *testing.T) {
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	for _, tc := range []struct {
		when, noColor string
		tty, want     bool
	}{
		{"auto", "", true, true},
		{"auto", "", false, false},
		{"auto", "1", true, false},
		{"always", "1", false, true},
		{"never", "", true, false},
	} {
		t.Setenv("NO_COLOR", tc.noColor)
		if got, err := diffColor(tc.when, tc.tty); err != nil || got != tc.want {
			t.Errorf("%+v: %v %v", tc, got, err)
		}
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "dumb")
	if got, _ := diffColor("auto", true); got {
		t.Error("colour for TERM=dumb")
	}
}
