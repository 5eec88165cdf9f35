//go:build linux

package install_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/systemd"
	"github.com/lbctl/lbctl/test/systemdtest"
)

// rewriteBundle rewrites a bundle's tar members: edit returns the new
// content of a member, or nil to drop it.
func rewriteBundle(t testing.TB, b []byte, edit func(name string, data []byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Header = zr.Header // as lbctl build wrote it: readers check it
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data = edit(h.Name, data)
		if data == nil {
			continue
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestRefused checks that bad bundles and downgrades are refused before
// anything changes on the node, and that rollback goes back through the
// same transactional path.
func TestRefused(t *testing.T) {
	systemdtest.SkipUnlessRoot(t)
	r1, r2 := tree(t, nil), tree(t, upgradeEdits(t))
	n := newNode(t, resolve(t, r1), resolve(t, r2))
	n.install(n.put(build(t, n.keys, r1, 1), "1"))
	good2 := build(t, n.keys, r2, 2)
	// The node trusts the keys of two sites; release 1 pinned its site.
	lab := newKeys(t, "lab")
	labPub, err := os.ReadFile(lab.public())
	if err != nil {
		t.Fatal(err)
	}
	n.sd.WriteFile(t, filepath.Join(trustedDir, "lab.pub"), labPub, 0o644)
	labEdits := upgradeEdits(t)
	labEdits["site.yaml"] = replace(t, "site: campus\n", "site: lab\n")
	lab2 := build(t, lab, tree(t, labEdits), 2)
	ref := n.capture()
	refLog := len(n.history())

	unchanged := func(what string) {
		t.Helper()
		if d := diff(ref, n.capture(), diffOptions{}); len(d) > 0 {
			t.Errorf("%s changed the node:\n  %s", what, strings.Join(d, "\n  "))
		}
		if _, err := os.Stat(n.sd.RootPath(filepath.Join(stateDir, "releases", "2"))); err == nil {
			t.Errorf("%s staged release 2", what)
		}
	}
	refuse := func(what, bundle, wantErr string, args ...string) {
		t.Helper()
		args = append([]string{"install", "--config", configPath}, append(args, bundle)...)
		out, _, err := n.lbctl(args...)
		if err == nil {
			t.Errorf("%s: install succeeded:\n%s", what, out)
		} else if !strings.Contains(out, wantErr) {
			t.Errorf("%s: error does not mention %q:\n%s", what, wantErr, out)
		} else {
			t.Logf("refused %s: %s", what, lastLines(out, 2))
		}
		unchanged(what)
	}

	other := newKeys(t, "untrusted")
	refuse("a bundle signed by an untrusted key", n.put(build(t, other, r2, 2), "untrusted-2"), "verify bundle")
	refuse("a bundle without signature", n.put(rewriteBundle(t, good2, func(name string, data []byte) []byte {
		if strings.HasSuffix(name, ".minisig") {
			return nil
		}
		return data
	}), "unsigned-2"), "verify bundle")
	refuse("a bundle changed after signing", n.put(rewriteBundle(t, good2, func(name string, data []byte) []byte {
		if name == "resolved.json" {
			return append(data, '\n') // still valid JSON, not what was signed
		}
		return data
	}), "tampered-2"), "verify bundle")
	refuse("a bundle of another site signed by another trusted key", n.put(lab2, "lab-2"),
		`bundle 2 belongs to site "lab", this node to site "campus" (pinned by release 1 in /var/lib/lbctl/site.json); nothing was changed`)

	// Certificates live on the node: a missing one, or one that does not
	// cover the service, fails the install before anything changes.
	p2 := n.put(good2, "2")
	certFile := n.sd.RootPath(filepath.Join(certDir, "status.campus.example.pem"))
	goodCert, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	refuse("a release whose certificate is missing", p2, "status.campus.example")
	wrong, err := n.ca.IssueValid("other.campus.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, wrong, 0o644); err != nil {
		t.Fatal(err)
	}
	refuse("a release whose certificate does not cover its name", p2, "status.campus.example")
	if err := os.WriteFile(certFile, goodCert, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := len(n.history()); got != refLog {
		t.Errorf("refused installs wrote %d install log entries", got-refLog)
	}

	// The good release installs; then release 1 is a downgrade.
	n.install(p2)
	at2 := n.capture()
	checkRelease(t, n.loadState("2"), at2)
	out, _, err := n.lbctl("install", "--config", configPath, n.put(build(t, n.keys, r1, 1), "1-again"))
	if err == nil || !strings.Contains(out, "older than the current release") {
		t.Errorf("downgrade to 1: err %v:\n%s", err, out)
	}
	if d := diff(at2, n.capture(), diffOptions{}); len(d) > 0 {
		t.Errorf("refused downgrade changed the node:\n  %s", strings.Join(d, "\n  "))
	}
	if out, _ := n.install(p2); !strings.Contains(out, "already installed") {
		t.Errorf("installing the current release again: %s", out)
	}
	if d := diff(at2, n.capture(), diffOptions{}); len(d) > 0 {
		t.Errorf("installing the current release again changed the node:\n  %s", strings.Join(d, "\n  "))
	}

	// Rollback re-installs release 1 through the same path: the node is
	// release 1 again; only the VIPs the way back stops or restarts (the
	// one release 2 removed, the one whose transparency changed) have new
	// main PIDs.
	out, _ = n.mustLbctl("rollback", "--config", configPath)
	if !strings.Contains(out, "installed release 1 (was 2)") {
		t.Errorf("rollback: %s", out)
	}
	back := n.capture()
	checkRelease(t, n.loadState("1"), back)
	cycled := []string{systemd.UnitName("192.0.2.30"), systemd.UnitName("192.0.2.40")}
	if d := diff(ref, back, diffOptions{PIDsMayChange: cycled}); len(d) > 0 {
		t.Errorf("after rollback the node differs from release 1 as first installed:\n  %s", strings.Join(d, "\n  "))
	}
	h := n.history()
	if last := h[len(h)-1]; last.Op != "rollback" || last.Result != "committed" || last.From != 2 || last.To != 1 {
		t.Errorf("last install log entry %+v, want a committed rollback 2 -> 1", last)
	}
	// The rollback leaves the highest serial record at 2: release 1 is
	// current, but a bundle between them would be a replay.
	if out, _ := n.mustLbctl("releases", "--config", configPath); !strings.Contains(out, "highest serial installed here: 2") {
		t.Errorf("lbctl releases after the rollback:\n%s", out)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
