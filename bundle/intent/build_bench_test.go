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
// CLI: resolve, pack, sign and write the bundle, then verify and read it
// back as a node does. BenchmarkBuild10kTarFloor is the floor the issue
// compares with: a plain `tar czf` of the same payload files.
func BenchmarkBuild10k(b *testing.B) {
	dir := genTree(b, 10000)
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	trust := sign.NewTrust(pub)
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		site, err := Resolve(context.Background(), dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		files, err := pack.Files(site)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		created := time.Unix(1764000000, 0).UTC()
		if _, err := archive.Write(&buf, archive.Manifest{Serial: uint64(i + 1), Created: created}, files, priv); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
		bundle, err := archive.Read(&buf, trust, created, archive.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pack.Site(bundle); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "bundle-bytes")
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
