//go:build linux

package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/pack"
	"github.com/lbctl/lbctl/bundle/sign"
	"github.com/lbctl/lbctl/internal/testcert"
)

// roNode is a node configuration whose every path lies under one
// directory, with a trusted key, certificates for the campus example and a
// signed campus bundle, but no state directory.
type roNode struct {
	root, config, state, bundle, pub string
}

func newRONode(t *testing.T) roNode {
	t.Helper()
	// HAProxy's user must reach the certificates (validation checks it).
	root, err := os.MkdirTemp("", "lbctl-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	n := roNode{root: root, config: filepath.Join(root, "lbctl.yaml"), state: filepath.Join(root, "state"),
		bundle: filepath.Join(root, "campus.bundle")}
	key := filepath.Join(root, "keys", "ops")
	os.Mkdir(filepath.Dir(key), 0o755)
	keygen(t, key)
	n.pub = key + ".pub"
	trusted := filepath.Join(root, "trusted.d")
	os.Mkdir(trusted, 0o755)
	pubText, err := os.ReadFile(n.pub)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(trusted, "ops.pub"), pubText, 0o644)
	if _, stderr, code := run(t, "build", campusCopy(t), "-o", n.bundle, "--key", key+".key"); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	os.Chmod(n.bundle, 0o644)
	// Certificates for every TLS service of the bundle.
	certs := filepath.Join(root, "certs")
	os.Mkdir(certs, 0o755)
	pub, _ := sign.LoadPublicKey(n.pub)
	f, _ := os.Open(n.bundle)
	b, err := archive.Read(f, sign.NewTrust(pub), time.Now(), archive.Limits{})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	site, err := pack.Site(b)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := testcert.NewCA("lbctl-ro CA")
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string][]string{}
	for _, s := range site.Services {
		if s.TLS != nil && s.TLS.Certificate != "" {
			for _, h := range append([]string{s.FQDN}, s.Aliases...) {
				if !slices.Contains(hosts[s.TLS.Certificate], h) {
					hosts[s.TLS.Certificate] = append(hosts[s.TLS.Certificate], h)
				}
			}
		}
	}
	for name, hs := range hosts {
		pem, err := ca.IssueValid(hs...)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(certs, name+".pem"), pem, 0o644)
	}
	cfg := "node: lb1\nstate_dir: " + n.state + "\ntrusted_dir: " + trusted + "\ncert_dir: " + certs +
		"\nvip_dir: " + filepath.Join(root, "vips") + "\nunit_dir: " + filepath.Join(root, "units") +
		"\nruntime_dir: " + filepath.Join(root, "run") + "\nbird:\n  config: " + filepath.Join(root, "bird", "bird.conf") +
		"\n  include_dir: " + filepath.Join(root, "bird", "lbctl") + "\n  socket: " + filepath.Join(root, "bird.ctl") +
		"\nagent:\n  socket: " + filepath.Join(root, "agent.sock") + "\n  metrics: 127.0.0.1:1\n"
	if err := os.WriteFile(n.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// tree lists every path under dir with its mode and size.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, p+" "+fi.Mode().String()+" "+fi.ModTime().String())
		return nil
	})
	return out
}

func sameTree(t *testing.T, what string, before, after []string) {
	t.Helper()
	if !slices.Equal(before, after) {
		for _, p := range after {
			if !slices.Contains(before, p) {
				t.Errorf("%s created or changed %s", what, p)
			}
		}
		for _, p := range before {
			if !slices.Contains(after, p) {
				t.Errorf("%s removed or changed %s", what, p)
			}
		}
	}
}

// On a node with nothing installed, the read-only commands create nothing,
// say so, and exit 0 (status, releases, plan of a first install, inspect
// and verify of a bundle) or 1 (verify of the node: nothing to compare).
func TestReadOnlyCommandsNoState(t *testing.T) {
	n := newRONode(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "--config", n.config}, 0, "node lb1: nothing installed (no state directory " + n.state + ")"},
		{[]string{"status", "--config", n.config, "--json"}, 0, `"installed": false`},
		{[]string{"releases", "--config", n.config}, 0, "node lb1: nothing installed"},
		{[]string{"releases", "--config", n.config, "--json"}, 0, `"installed": false`},
		{[]string{"verify", "--config", n.config}, 1, "verify: node lb1: nothing installed (no state directory " + n.state + "): no release to compare the node with"},
		{[]string{"plan", "--config", n.config, n.bundle}, 0, "node lb1 has no release installed: this is its first install"},
		{[]string{"inspect", "--pubkey", n.pub, n.bundle}, 0, "campus"},
		{[]string{"verify", "--pubkey", n.pub, n.bundle}, 0, ": OK serial"},
	} {
		before := tree(t, n.root)
		tmpBefore := tree(t, os.TempDir())
		out, errOut, code := run(t, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("lbctl %s: exit %d, want %d; output lacks %q:\n%s%s", strings.Join(c.args, " "), code, c.code, c.want, out, errOut)
		}
		sameTree(t, c.args[0], before, tree(t, n.root))
		if _, err := os.Lstat(n.state); !os.IsNotExist(err) {
			t.Errorf("%s created the state directory: %v", c.args[0], err)
		}
		// Validation's scratch directory is removed again.
		for _, p := range tree(t, os.TempDir()) {
			if strings.Contains(p, "lbctl-validate-") && !slices.Contains(tmpBefore, p) {
				t.Errorf("%s left %s", c.args[0], p)
			}
		}
	}
}

// As a user who may not read the node's state, the read-only commands say
// that it is a permission problem, exit 1 and create nothing.
func TestReadOnlyCommandsPermission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run lbctl as nobody with setpriv")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	n := newRONode(t)
	// The state of an installed node: root's, mode 0750.
	for _, d := range []string{n.state, filepath.Join(n.state, "releases", "5")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("releases/5", filepath.Join(n.state, "current"))
	os.WriteFile(filepath.Join(n.state, "lock"), nil, 0o600)
	bin := filepath.Join(n.root, "lbctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"status", "--config", n.config},
		{"releases", "--config", n.config},
		{"verify", "--config", n.config},
		{"plan", "--config", n.config, n.bundle},
	} {
		before := tree(t, n.root)
		cmd := exec.Command(setpriv, append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", bin}, args...)...)
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		if code != 1 || !strings.Contains(string(out), "permission denied") || !strings.Contains(string(out), n.state) || !strings.Contains(string(out), "run as root") {
			t.Errorf("lbctl %s as nobody: exit %d (%v), want 1 and a permission error naming %s:\n%s", args[0], code, err, n.state, out)
		} else {
			t.Logf("lbctl %s as nobody: %s", args[0], strings.TrimSpace(string(out)))
		}
		sameTree(t, args[0], before, tree(t, n.root))
	}
}
