//go:build linux

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncCommand runs `lbctl sync` against a node whose current release is
// 5, with real signed bundles: the same serial and an older one are
// skipped, tampered and untrusted ones refused, over a directory and over
// HTTP (second request: 304). No case reaches the install: nothing on this
// host may change.
func TestSyncCommand(t *testing.T) {
	dir := t.TempDir()
	site, other := filepath.Join(dir, "site"), filepath.Join(dir, "other")
	keygen(t, site)
	keygen(t, other)
	trusted := filepath.Join(dir, "trusted.d")
	os.Mkdir(trusted, 0o755)
	pub, _ := os.ReadFile(site + ".pub")
	os.WriteFile(filepath.Join(trusted, "site.pub"), pub, 0o644)
	state := filepath.Join(dir, "state")
	os.MkdirAll(filepath.Join(state, "releases", "5"), 0o750)
	if err := os.Symlink(filepath.Join("releases", "5"), filepath.Join(state, "current")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "lbctl.yaml")
	os.WriteFile(cfg, []byte("node: lb1\nstate_dir: "+state+"\ntrusted_dir: "+trusted+"\n"), 0o644)

	tree := campusCopy(t)
	bundle := func(serial, key string) []byte {
		t.Helper()
		out := filepath.Join(dir, serial+"-"+filepath.Base(key)+".bundle")
		if _, stderr, code := run(t, "build", tree, "-o", out, "--key", key+".key", "--serial", serial, "--time", "2026-11-24T10:00:00Z", "--expires", "never"); code != 0 {
			t.Fatalf("build: %s", stderr)
		}
		b, _ := os.ReadFile(out)
		return b
	}
	b5, b4 := bundle("5", site), bundle("4", site)
	bundles := filepath.Join(dir, "bundles")
	os.Mkdir(bundles, 0o755)
	put := func(name string, b []byte) {
		os.RemoveAll(bundles)
		os.Mkdir(bundles, 0o755)
		os.WriteFile(filepath.Join(bundles, name), b, 0o644)
	}
	sync := func(args ...string) (string, string, int) {
		return run(t, append([]string{"sync", "--config", cfg, "--attempts", "1"}, args...)...)
	}

	put("campus-5.bundle", b5)
	out, stderr, code := sync("--source", bundles)
	if code != 0 || !strings.Contains(out, "release 5 from "+filepath.Join(bundles, "campus-5.bundle")+" is current: nothing to do") {
		t.Errorf("same serial (%d): %s %s", code, out, stderr)
	}
	put("campus-4.bundle", b4)
	out, stderr, code = sync("--source", bundles, "--json")
	var res syncJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Action != "older" || res.Serial != 4 || res.Current != 5 {
		t.Errorf("older (%d): %s %s", code, out, stderr)
	}
	tampered := append([]byte(nil), bundle("6", site)...)
	tampered[len(tampered)/2] ^= 1
	put("campus-6.bundle", tampered)
	if _, stderr, code = sync("--source", bundles); code != 1 || !strings.Contains(stderr, "bundle refused") {
		t.Errorf("tampered (%d): %s", code, stderr)
	}
	put("campus-7.bundle", bundle("7", other))
	if _, stderr, code = sync("--source", bundles); code != 1 || !strings.Contains(stderr, "bundle refused") || !strings.Contains(stderr, "untrusted") {
		t.Errorf("untrusted key (%d): %s", code, stderr)
	}
	if cur, _ := os.Readlink(filepath.Join(state, "current")); cur != filepath.Join("releases", "5") {
		t.Errorf("current changed to %s", cur)
	}

	// HTTP: the first run fetches and skips the same serial, the second
	// gets a 304.
	var conditional int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"five"`)
		if r.Header.Get("If-None-Match") == `"five"` {
			conditional++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(b5)
	}))
	defer srv.Close()
	url := srv.URL + "/campus/latest.bundle"
	if out, stderr, code = sync("--source", url); code != 0 || !strings.Contains(out, "is current: nothing to do") {
		t.Errorf("http (%d): %s %s", code, out, stderr)
	}
	if out, stderr, code = sync("--source", url); code != 0 || !strings.Contains(out, "not modified since the last sync") || conditional != 1 {
		t.Errorf("http again (%d, %d conditional): %s %s", code, conditional, out, stderr)
	}
	if _, stderr, code = sync(); code != 2 || !strings.Contains(stderr, "--source") {
		t.Errorf("no source (%d): %s", code, stderr)
	}
}
