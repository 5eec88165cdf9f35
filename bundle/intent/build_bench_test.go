package intent

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/pack"
	"github.com/lbctl/lbctl/bundle/sign"
)

// BenchmarkBuild10k is `lbctl build` of the 10,000-service tree without the
// CLI, in two parts: build (resolve, pack, sign and write the bundle: what
// the issue compares with its floor) and verify (check the signature, read
// and decode it as a node does). BenchmarkBuild10kTarFloor is the floor: a
// plain `tar czf` of the same payload files.
func BenchmarkBuild10k(b *testing.B) {
	dir := genTree(b, 10000)
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	trust := sign.NewTrust(pub)
	created := time.Unix(1764000000, 0).UTC()
	build := func(b *testing.B, serial int) []byte {
		site, err := Resolve(context.Background(), dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		files, err := pack.Files(site)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := archive.Write(&buf, archive.Manifest{Serial: uint64(serial), Created: created}, files, priv); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	var bundle []byte
	b.Run("build", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			bundle = build(b, i+1)
		}
		b.ReportMetric(float64(len(bundle)), "bundle-bytes")
	})
	b.Run("verify", func(b *testing.B) {
		if bundle == nil {
			bundle = build(b, 1)
			b.ResetTimer()
		}
		for i := 0; i < b.N; i++ {
			bu, err := archive.Read(bytes.NewReader(bundle), trust, created, archive.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := pack.Site(bu); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBuild10kTarFloor(b *testing.B) {
	if _, err := exec.LookPath("tar"); err != nil {
		b.Skip("no tar")
	}
	dir := genTree(b, 10000)
	site, err := Resolve(context.Background(), dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	files, err := pack.Files(site)
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	for _, f := range files {
		p := filepath.Join(out, "payload", f.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("tar", "czf", filepath.Join(out, "floor.tar.gz"), "-C", filepath.Join(out, "payload"), ".")
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("tar: %v %s", err, o)
		}
	}
}
