package archive

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/sign"
)

const minisignBin = "/usr/bin/minisign"

func needMinisign(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(minisignBin); err != nil {
		t.Skip("needs Debian's minisign at " + minisignBin)
	}
}

func runMinisign(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(minisignBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("minisign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Debian's minisign verifies the manifest signature of a bundle lbctl wrote
// with a key from sign.GenerateKeyFiles, and shows lbctl's trusted comment.
func TestMinisignVerifiesLbctlBundle(t *testing.T) {
	needMinisign(t)
	dir := t.TempDir()
	name := filepath.Join(dir, "ops")
	pub, err := sign.GenerateKeyFiles(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubPath, keyPath := sign.KeyFiles(name)
	priv, err := sign.LoadPrivateKey(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Write(&buf, Manifest{Serial: 77, Created: testCreated}, testFiles(), priv); err != nil {
		t.Fatal(err)
	}
	b, err := Read(&buf, sign.NewTrust(pub), testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(dir, ManifestName)
	os.WriteFile(mf, b.ManifestBytes, 0o644)
	os.WriteFile(filepath.Join(dir, SignatureName), b.Signature, 0o644)
	// -H: the signature must be the pre-hashed kind, minisign's default.
	out := runMinisign(t, "", "-V", "-H", "-m", mf, "-p", pubPath)
	if !strings.Contains(out, "Signature and comment signature verified") ||
		!strings.Contains(out, "Trusted comment: "+TrustedComment(77, b.ManifestBytes)) {
		t.Fatalf("minisign output:\n%s", out)
	}
	// And it refuses the manifest once a byte changes.
	os.WriteFile(mf, bytes.Replace(b.ManifestBytes, []byte(`"serial": 77`), []byte(`"serial": 78`), 1), 0o644)
	cmd := exec.Command(minisignBin, "-V", "-m", mf, "-p", pubPath)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("minisign accepted a changed manifest:\n%s", out)
	}
	// The unencrypted secret key lbctl wrote carries minisign's checksum,
	// so minisign itself can sign with it, and lbctl verifies that.
	msg := filepath.Join(dir, "msg")
	os.WriteFile(msg, []byte("hello"), 0o644)
	runMinisign(t, "", "-S", "-W", "-s", keyPath, "-m", msg)
	sig, _ := os.ReadFile(msg + ".minisig")
	if !minisignVerify(pub, []byte("hello"), sig) {
		t.Fatal("signature minisign made with lbctl's key does not verify")
	}
}

// A key pair made by `minisign -G -W` signs lbctl bundles, and its public
// key file is accepted by a trust directory.
func TestMinisignKeySignsBundle(t *testing.T) {
	needMinisign(t)
	dir := t.TempDir()
	pubPath, keyPath := filepath.Join(dir, "trusted", "ops.pub"), filepath.Join(dir, "ops.key")
	os.Mkdir(filepath.Dir(pubPath), 0o755)
	runMinisign(t, "", "-G", "-W", "-p", pubPath, "-s", keyPath)
	priv, err := sign.LoadPrivateKey(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := sign.LoadTrustDir(filepath.Dir(pubPath))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Write(&buf, Manifest{Serial: 5, Created: testCreated}, testFiles(), priv); err != nil {
		t.Fatal(err)
	}
	b, err := Read(&buf, trust, testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Signer != priv.ID() {
		t.Fatalf("signer %x, want %x", b.Signer, priv.ID())
	}
	// minisign prints the key id in its comment without leading zeros.
	text, _ := os.ReadFile(pubPath)
	first, _, _ := strings.Cut(string(text), "\n")
	fields := strings.Fields(first)
	id, err := sign.ParseKeyID(fmt.Sprintf("%016s", fields[len(fields)-1]))
	if err != nil || id != priv.ID() {
		t.Errorf("minisign's key id comment %q does not match lbctl's %s (%v)", first, sign.FormatKeyID(priv.ID()), err)
	}
}

// Encrypted keys interoperate both ways (minisign reads the password from
// stdin when it is not a terminal).
func TestMinisignEncryptedKeys(t *testing.T) {
	needMinisign(t)
	if testing.Short() {
		t.Skip("short: scrypt with minisign's 1 GiB parameters")
	}
	dir := t.TempDir()
	const pw = "s3cret pass"
	pass := func(bool) (string, error) { return pw, nil }

	// minisign's encrypted key, loaded by lbctl.
	runMinisign(t, pw+"\n"+pw+"\n", "-G", "-p", filepath.Join(dir, "m.pub"), "-s", filepath.Join(dir, "m.key"))
	priv, err := sign.LoadPrivateKey(filepath.Join(dir, "m.key"), pass)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(filepath.Join(dir, "m.pub"))
	if err != nil || pub.ID() != priv.ID() {
		t.Fatalf("public key %v, id %x vs %x", err, pub.ID(), priv.ID())
	}

	// lbctl's encrypted key, used by minisign.
	name := filepath.Join(dir, "l")
	lpub, err := sign.GenerateKeyFiles(name, pass)
	if err != nil {
		t.Fatal(err)
	}
	_, keyPath := sign.KeyFiles(name)
	msg := filepath.Join(dir, "msg")
	os.WriteFile(msg, []byte("hello"), 0o644)
	runMinisign(t, pw+"\n", "-S", "-s", keyPath, "-m", msg)
	sig, _ := os.ReadFile(msg + ".minisig")
	if !minisignVerify(lpub, []byte("hello"), sig) {
		t.Fatal("minisign's signature with lbctl's encrypted key does not verify")
	}
}
