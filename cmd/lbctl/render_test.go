package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderOutputDirectory: render writes a new directory, replaces one
// it wrote (no stale file survives), and refuses a foreign non-empty one,
// leaving it as it was.
func TestRenderOutputDirectory(t *testing.T) {
	tree := campusCopy(t)
	out := filepath.Join(t.TempDir(), "lb1")
	stdout, stderr, code := run(t, "render", "node", tree, "lb1", out)
	if code != 0 || !strings.Contains(stdout, filepath.Join(out, "bird", "bird.conf")) {
		t.Fatalf("render into a new directory: %d\n%s%s", code, stdout, stderr)
	}
	stale := filepath.Join(out, "vips", "192.0.2.250", "haproxy.cfg")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("old\n"), 0o644)
	if _, stderr, code := run(t, "render", "node", tree, "lb1", out, "--zone", filepath.Join(tree, "campus.zone")); code != 0 {
		t.Fatalf("render again: %s", stderr)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a file render did not write survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "bird", "bird.conf")); err != nil {
		t.Errorf("render again: %v", err)
	}
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine\n"), 0o644)
	_, stderr, code = run(t, "render", "icinga2", tree, foreign)
	if code != 1 || !strings.Contains(stderr, "not empty and not written by lbctl render") {
		t.Errorf("render into a foreign directory: %d %s", code, stderr)
	}
	if entries, _ := os.ReadDir(foreign); len(entries) != 1 {
		t.Errorf("the foreign directory changed: %v", entries)
	}
}
