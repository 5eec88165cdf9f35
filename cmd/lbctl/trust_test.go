package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminTrust: on a workstation without /etc/lbctl, build --against,
// diff, inspect and verify find the key through --pubkey, $LBCTL_PUBKEY,
// $LBCTL_TRUSTED_DIR or the admin's ~/.config/lbctl/trusted.d
// ($XDG_CONFIG_HOME), and without any say what to give.
func TestAdminTrust(t *testing.T) {
	f := newAdminFixture(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("LBCTL_PUBKEY", "")
	t.Setenv("LBCTL_TRUSTED_DIR", "")
	old := systemTrustDir
	systemTrustDir = filepath.Join(t.TempDir(), "etc-lbctl-trusted.d") // does not exist
	t.Cleanup(func() { systemTrustDir = old })

	next := filepath.Join(f.dir, "next.bundle")
	commands := map[string][]string{
		"inspect": {"inspect", f.bundle},
		"verify":  {"verify", f.bundle},
		"diff":    {"diff", f.bundle, f.bundle},
		"build":   {"build", f.tree, "-o", next, "--key", f.key + ".key", "--serial", "11", "--against", f.bundle},
	}
	try := func(how string, code int, want string, extra ...string) {
		t.Helper()
		for name, args := range commands {
			out, errOut, got := run(t, append(args, extra...)...)
			if got != code || !strings.Contains(out+errOut, want) {
				t.Errorf("%s, %s: exit %d, want %d with %q:\n%s%s", how, name, got, code, want, out, errOut)
			}
		}
	}
	// Nothing: a usage error that names every way.
	userDir := filepath.Join(home, ".config", "lbctl", "trusted.d")
	try("no key anywhere", 2, "no trusted public key: give --pubkey FILE")
	try("no key anywhere", 2, "LBCTL_PUBKEY=FILE")
	try("no key anywhere", 2, userDir)
	// --pubkey, then the variables.
	try("--pubkey", 0, "", "--pubkey", f.pub)
	t.Setenv("LBCTL_PUBKEY", f.pub)
	try("$LBCTL_PUBKEY", 0, "")
	t.Setenv("LBCTL_PUBKEY", "")
	keys := filepath.Join(f.dir, "keys")
	os.Mkdir(keys, 0o755)
	copyFile(t, f.pub, filepath.Join(keys, "site.pub"))
	t.Setenv("LBCTL_TRUSTED_DIR", keys)
	try("$LBCTL_TRUSTED_DIR", 0, "")
	t.Setenv("LBCTL_TRUSTED_DIR", "")
	// The admin's directory: ~/.config, or $XDG_CONFIG_HOME.
	os.MkdirAll(userDir, 0o755)
	copyFile(t, f.pub, filepath.Join(userDir, "site.pub"))
	try("~/.config/lbctl/trusted.d", 0, "")
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	try("no $XDG_CONFIG_HOME/lbctl/trusted.d", 2, filepath.Join(xdg, "lbctl", "trusted.d"))
	os.MkdirAll(filepath.Join(xdg, "lbctl", "trusted.d"), 0o755)
	keygen(t, filepath.Join(f.dir, "other"))
	copyFile(t, filepath.Join(f.dir, "other.pub"), filepath.Join(xdg, "lbctl", "trusted.d", "other.pub"))
	try("another key in $XDG_CONFIG_HOME/lbctl/trusted.d", 1, "untrusted key")
	copyFile(t, f.pub, filepath.Join(xdg, "lbctl", "trusted.d", "site.pub"))
	try("$XDG_CONFIG_HOME/lbctl/trusted.d", 0, "")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
