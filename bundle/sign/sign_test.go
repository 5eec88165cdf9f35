package sign

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

func TestKeyID(t *testing.T) {
	if got := FormatKeyID(0xAB); got != "00000000000000AB" {
		t.Errorf("FormatKeyID = %q", got)
	}
	if id, err := ParseKeyID("00000000000000ab"); err != nil || id != 0xAB {
		t.Errorf("ParseKeyID = %x, %v", id, err)
	}
	for _, bad := range []string{"", "AB", "00000000000000AG", "000000000000000AB", "+000000000000AB"} {
		if _, err := ParseKeyID(bad); err == nil {
			t.Errorf("ParseKeyID(%q) accepted", bad)
		}
	}
}

func TestGenerateUnencrypted(t *testing.T) {
	name := filepath.Join(t.TempDir(), "ops")
	pub, err := GenerateKeyFiles(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubPath, keyPath := KeyFiles(name)
	for p, mode := range map[string]os.FileMode{pubPath: 0o644, keyPath: 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", p, st.Mode().Perm(), mode, err)
		}
	}
	text, _ := os.ReadFile(pubPath)
	if want := "untrusted comment: minisign public key " + FormatKeyID(pub.ID()) + "\n"; !strings.HasPrefix(string(text), want) {
		t.Errorf("public key file %q, want prefix %q", text, want)
	}
	priv, err := LoadPrivateKey(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Equal(pub) || priv.ID() != pub.ID() {
		t.Fatal("loaded keys differ from the generated ones")
	}
	msg := []byte("hello")
	if !minisign.Verify(loaded, msg, minisign.Sign(priv, msg)) {
		t.Fatal("loaded key pair does not sign and verify")
	}
	// Never overwrite, and leave the existing files alone.
	before, _ := os.ReadFile(keyPath)
	if _, err := GenerateKeyFiles(name, nil); !errors.Is(err, ErrKeyExists) {
		t.Errorf("second keygen: %v, want ErrKeyExists", err)
	}
	os.Remove(pubPath)
	if _, err := GenerateKeyFiles(name, nil); !errors.Is(err, ErrKeyExists) {
		t.Errorf("keygen over a lone secret key: %v, want ErrKeyExists", err)
	}
	after, _ := os.ReadFile(keyPath)
	if string(before) != string(after) {
		t.Error("secret key changed")
	}
}

// Encrypted keys use minisign's scrypt parameters (1 GiB, a few seconds).
func TestGenerateEncrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("short: scrypt with minisign's 1 GiB parameters")
	}
	name := filepath.Join(t.TempDir(), "ops")
	calls := 0
	pass := func(confirm bool) (string, error) {
		calls++
		if calls == 1 && !confirm {
			t.Error("keygen did not ask for confirmation")
		}
		return "correct horse", nil
	}
	pub, err := GenerateKeyFiles(name, pass)
	if err != nil {
		t.Fatal(err)
	}
	_, keyPath := KeyFiles(name)
	data, _ := os.ReadFile(keyPath)
	if !minisign.IsEncrypted(data) {
		t.Fatal("secret key is not encrypted")
	}
	if _, err := LoadPrivateKey(keyPath, nil); err == nil {
		t.Error("encrypted key loaded without passphrase")
	}
	if _, err := LoadPrivateKey(keyPath, func(bool) (string, error) { return "wrong", nil }); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
	priv, err := LoadPrivateKey(keyPath, pass)
	if err != nil {
		t.Fatal(err)
	}
	if priv.ID() != pub.ID() {
		t.Fatal("decrypted key has another id")
	}
}

func TestGenerateEmptyPassphrase(t *testing.T) {
	name := filepath.Join(t.TempDir(), "ops")
	if _, err := GenerateKeyFiles(name, func(bool) (string, error) { return "", nil }); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("empty passphrase: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(name)); len(ents) != 0 {
		t.Errorf("failed keygen left %v", ents)
	}
}

func writeKey(t *testing.T, dir, name string) minisign.PublicKey {
	t.Helper()
	pub, _, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), MarshalPublicKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestLoadTrustDir(t *testing.T) {
	dir := t.TempDir()
	old := writeKey(t, dir, "2025.pub")
	cur := writeKey(t, dir, "2026.pub")
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a key"), 0o644)
	other, _, _ := minisign.GenerateKey(nil)
	rev := "# rotated out in 2026\n" + strings.ToLower(FormatKeyID(old.ID())) + "  # old laptop key\n\n" + FormatKeyID(other.ID()) + "\n"
	if err := os.WriteFile(filepath.Join(dir, RevokedFile), []byte(rev), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := LoadTrustDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := tr.Lookup(cur.ID()); err != nil || !k.Equal(cur) {
		t.Errorf("current key: %v", err)
	}
	if _, err := tr.Lookup(old.ID()); !errors.Is(err, ErrRevokedKey) {
		t.Errorf("revoked key: %v", err)
	}
	if _, err := tr.Lookup(other.ID()); !errors.Is(err, ErrRevokedKey) {
		t.Errorf("revoked unknown key: %v", err)
	}
	if _, err := tr.Lookup(12345); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("unknown key: %v", err)
	}
	if ids := tr.KeyIDs(); len(ids) != 1 || ids[0] != cur.ID() {
		t.Errorf("KeyIDs = %x", ids)
	}
	if len(tr.Revoked()) != 2 {
		t.Errorf("Revoked = %x", tr.Revoked())
	}
	var nilTrust *Trust
	if _, err := nilTrust.Lookup(cur.ID()); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("nil trust: %v", err)
	}
}

func TestLoadTrustDirErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := LoadTrustDir(empty); !errors.Is(err, ErrNoTrustedKeys) {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := LoadTrustDir(filepath.Join(empty, "absent")); err == nil {
		t.Error("absent dir accepted")
	}
	bad := t.TempDir()
	writeKey(t, bad, "good.pub")
	os.WriteFile(filepath.Join(bad, "broken.pub"), []byte("untrusted comment: x\nAAAA\n"), 0o644)
	os.WriteFile(filepath.Join(bad, RevokedFile), []byte("ABCD\n"), 0o644)
	_, err := LoadTrustDir(bad)
	if err == nil || !strings.Contains(err.Error(), "broken.pub") || !strings.Contains(err.Error(), "revoked:1") {
		t.Errorf("broken dir: %v, want both the key file and revoked:1 named", err)
	}
}
