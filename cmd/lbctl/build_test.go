package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildReproducibleAndDiff(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "site")
	keygen(t, key)
	tree := campusCopy(t)
	b1, b1again, b2 := filepath.Join(dir, "1.bundle"), filepath.Join(dir, "1again.bundle"), filepath.Join(dir, "2.bundle")
	for _, out := range []string{b1, b1again} {
		if _, stderr, code := run(t, "build", tree, "-o", out, "--key", key+".key", "--serial", "1", "--time", "2026-11-24T10:00:00Z", "--expires", "never"); code != 0 {
			t.Fatalf("build: %d %s", code, stderr)
		}
	}
	x, _ := os.ReadFile(b1)
	y, _ := os.ReadFile(b1again)
	if !bytes.Equal(x, y) || len(x) == 0 {
		t.Fatal("the same tree, serial and time gave different bytes")
	}
	// Debian's minisign verifies lbctl's signature of the manifest.
	if _, err := exec.LookPath("minisign"); err == nil {
		ex := filepath.Join(dir, "x")
		os.Mkdir(ex, 0o755)
		if out, err := exec.Command("tar", "-xzf", b1, "-C", ex, "MANIFEST.json", "MANIFEST.json.minisig").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v %s", err, out)
		}
		if out, err := exec.Command("minisign", "-Vm", filepath.Join(ex, "MANIFEST.json"), "-p", key+".pub").CombinedOutput(); err != nil {
			t.Fatalf("minisign -V: %v %s", err, out)
		}
	}

	// Change one service: the summary names it, and only its VIP's files
	// change, on both nodes.
	wiki := filepath.Join(tree, "web", "wiki.yaml")
	src, _ := os.ReadFile(wiki)
	os.WriteFile(wiki, bytes.Replace(src, []byte("balance: source"), []byte("balance: leastconn"), 1), 0o644)
	out, stderr, code := run(t, "build", tree, "-o", b2, "--key", key+".key", "--serial", "2", "--against", b1, "--pubkey", key+".pub")
	if code != 0 {
		t.Fatalf("build --against: %d %s", code, stderr)
	}
	for _, want := range []string{"services: 1 changed\n          ~web/wiki\n", "vips:     1 changed\n          ~192.0.2.11\n",
		"files:    1 changed on lb1, lb2\n          ~vips/192.0.2.11/haproxy.cfg\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("build --against output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = run(t, "diff", b1, b2, "--pubkey", key+".pub")
	if code != 0 || !strings.Contains(out, "-    balance source\n+    balance leastconn\n") || !strings.Contains(out, "diff lb1 lb2: vips/192.0.2.11/haproxy.cfg\n") {
		t.Fatalf("diff (%d):\n%s", code, out)
	}
	if strings.Count(out, "+++ b/") != 1 {
		t.Errorf("diff touches more than the wiki VIP's file, once for both nodes:\n%s", out)
	}
	// An older serial against a newer bundle is refused.
	if _, stderr, code := run(t, "build", tree, "-o", filepath.Join(dir, "3.bundle"), "--key", key+".key", "--serial", "2", "--against", b2, "--pubkey", key+".pub"); code != 1 || !strings.Contains(stderr, "is not newer") {
		t.Fatalf("same serial against: %d %s", code, stderr)
	}
	// A broken tree builds nothing.
	os.WriteFile(wiki, append(src, []byte("colour: blue\n")...), 0o644)
	bad := filepath.Join(dir, "bad.bundle")
	if _, stderr, code := run(t, "build", tree, "-o", bad, "--key", key+".key"); code != 1 || !strings.Contains(stderr, "wiki.yaml") {
		t.Fatalf("broken tree: %d %s", code, stderr)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatal("a bundle was written for a broken tree")
	}
}

// TestBuildRefusesCarriageReturn: build refuses what check refuses, naming
// the file, line and column, and writes no bundle.
func TestBuildRefusesCarriageReturn(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "site")
	keygen(t, key)
	tree := campusCopy(t)
	appendFile(t, filepath.Join(tree, "web", "wiki.yaml"), "owner: web\rteam\n")
	out := filepath.Join(dir, "x.bundle")
	_, stderr, code := run(t, "build", tree, "-o", out, "--key", key+".key", "--serial", "1")
	if code != 1 || !strings.Contains(stderr, filepath.Join(tree, "web", "wiki.yaml")+":8:11: carriage return (CR) inside a line") {
		t.Errorf("build exited %d:\n%s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a bundle was written: %v", err)
	}
}

// TestBuildAndDiffAcrossSites: two sites with the same node names. build
// --against and diff refuse to compare their bundles (writing nothing)
// unless --cross-site, and then say SITE CHANGED first; the manifest
// carries the site, which inspect shows.
func TestBuildAndDiffAcrossSites(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "site")
	keygen(t, key)
	tree := campusCopy(t)
	a, b := filepath.Join(dir, "a.bundle"), filepath.Join(dir, "b.bundle")
	if _, stderr, code := run(t, "build", tree, "-o", a, "--key", key+".key", "--serial", "1"); code != 0 {
		t.Fatalf("build: %d %s", code, stderr)
	}
	if out, _, code := run(t, "inspect", a, "--pubkey", key+".pub", "--json"); code != 0 || !strings.Contains(out, `"manifest_site": "campus"`) {
		t.Fatalf("inspect: %d %s", code, out)
	}
	// inspect lists the certificate files the VIPs need, with their users.
	out, _, code := run(t, "inspect", a, "--pubkey", key+".pub", "--cert-dir", "/srv/certs")
	for _, want := range []string{"site      campus (signed in the manifest", "/srv/certs/ldap.campus.example.pem", "/srv/certs/wildcard.campus.example.pem", "services directory/ldap"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("inspect (%d) lacks %q:\n%s", code, want, out)
		}
	}
	site := filepath.Join(tree, "site.yaml")
	src, _ := os.ReadFile(site)
	os.WriteFile(site, bytes.Replace(src, []byte("site: campus"), []byte("site: campus-b"), 1), 0o644)
	args := []string{"build", tree, "-o", b, "--key", key + ".key", "--serial", "2", "--against", a, "--pubkey", key + ".pub"}
	_, stderr, code := run(t, args...)
	if code != 1 || !strings.Contains(stderr, `is a bundle of site "campus", the other of site "campus-b"`) {
		t.Fatalf("build --against another site: %d %s", code, stderr)
	}
	if _, err := os.Stat(b); !os.IsNotExist(err) {
		t.Fatalf("a bundle was written: %v", err)
	}
	out, stderr, code = run(t, append(args, "--cross-site")...)
	if code != 0 || !strings.Contains(out, `SITE CHANGED: "campus" -> "campus-b"`) {
		t.Fatalf("build --against --cross-site: %d %s %s", code, out, stderr)
	}
	if _, stderr, code := run(t, "diff", a, b, "--pubkey", key+".pub"); code != 1 || !strings.Contains(stderr, "nodes of one site refuse the other's bundles") {
		t.Fatalf("diff of two sites: %d %s", code, stderr)
	}
	out, _, code = run(t, "diff", a, b, "--pubkey", key+".pub", "--cross-site", "--summary")
	if code != 0 || !strings.HasPrefix(out, `SITE CHANGED: "campus" -> "campus-b"`) || !strings.Contains(out, "services: unchanged") {
		t.Fatalf("diff --cross-site: %d\n%s", code, out)
	}
}
