// Package rendertest holds what the renderers' tests share: a resolved model
// literal that exercises every feature, golden-file comparison with the
// -update flag, throwaway TLS certificates, and helpers to run the reference
// tools (haproxy -c, bird -p, nft -c) on rendered text.
package rendertest

import (
	"context"

	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"github.com/lbctl/lbctl/bundle/intent"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render"
)

// Update rewrites golden files instead of comparing with them:
// go test ./bundle/render/... -update
var Update = flag.Bool("update", false, "rewrite golden files in testdata/")

// Golden compares got with the file testdata/<name> (or rewrites it with
// -update) and reports a line diff on mismatch.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", filepath.FromSlash(name))
	if *Update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("golden file %s: %v (run go test -update to create it)", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", p, LineDiff(string(want), string(got)))
	}
}

// GoldenFiles compares every rendered file with testdata/<dir>/<path> and
// the list of their paths with testdata/<dir>/files.txt.
func GoldenFiles(t testing.TB, dir string, files []render.File) {
	t.Helper()
	var list []string
	for _, f := range files {
		list = append(list, f.Path)
		Golden(t, dir+"/"+f.Path, f.Data)
	}
	Golden(t, dir+"/files.txt", []byte(strings.Join(list, "\n")+"\n"))
}

// LineDiff is a minimal diff: the first differing line with context, enough
// to see what changed.
func LineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + itoa(i+1) + ":\n- " + w + "\n+ " + g
		}
	}
	return "(equal lines, different bytes)"
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

// NeedTool skips the test unless name is on PATH, and returns its path.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s on PATH (Debian package): %v", name, err)
	}
	return p
}

// NeedRoot skips the test unless it runs as root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// WriteFiles writes name -> data below dir.
func WriteFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// WriteCert writes dir/<name>.pem: a self-signed ECDSA certificate for the
// given DNS names (name itself when none) followed by its key, the layout
// HAProxy's "crt" expects.
func WriteCert(t testing.TB, dir, name string, dnsNames ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(dnsNames) == 0 {
		dnsNames = []string{name}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: dnsNames[0]},
		DNSNames:              dnsNames,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Certificates lists the certificate names the services of site use.
func Certificates(site *model.Site) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range site.Services {
		if s.TLS != nil && s.TLS.Certificate != "" && !seen[s.TLS.Certificate] {
			seen[s.TLS.Certificate] = true
			out = append(out, s.TLS.Certificate)
		}
	}
	return out
}

// Run runs a command and returns its combined output and error.
func Run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// Campus resolves the examples/campus intents tree (hermetic: names come
// from its zone file).
func Campus(t testing.TB) *model.Site {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "examples", "campus")
	site, err := intent.Resolve(context.Background(), dir, intent.Options{})
	if err != nil {
		t.Fatalf("resolve %s: %v", dir, err)
	}
	return site
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}
