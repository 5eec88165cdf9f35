package intent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

const campus = "../../examples/campus"

func resolveJSON(t *testing.T, dir string) []byte {
	t.Helper()
	site, err := Resolve(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("resolve %s:\n%v", dir, err)
	}
	b, err := model.Encode(site)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCampusGolden: examples/campus resolves without errors to the
// reviewed model in testdata/campus.json (go test -update rewrites it).
func TestCampusGolden(t *testing.T) {
	got := resolveJSON(t, campus)
	golden := filepath.Join("testdata", "campus.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantB, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, wantB) {
		t.Errorf("resolved campus differs from %s; rerun with -update and review the diff", golden)
	}
	site, err := model.Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(site.Services) != 16 || len(site.VIPs) != 8 || len(site.Nodes) != 2 {
		t.Errorf("got %d services, %d VIPs, %d nodes; want 16, 8, 2", len(site.Services), len(site.VIPs), len(site.Nodes))
	}
	if v := site.VIP("192.0.2.10"); v == nil || len(v.Services) != 8 {
		t.Errorf("the TYPO3 VIP should carry 8 services: %+v", v)
	}
}

// TestDeterministic: the resolved model does not depend on map order or on
// the order in which the tree's files were created: a copy of
// examples/campus written in reverse order resolves to the same bytes,
// run after run.
func TestDeterministic(t *testing.T) {
	first := resolveJSON(t, campus)
	for range 5 {
		if b := resolveJSON(t, campus); !bytes.Equal(b, first) {
			t.Fatal("two runs over the same tree differ")
		}
	}
	var files []string
	err := filepath.WalkDir(campus, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(files)
	dir := filepath.Join(t.TempDir(), "campus-reversed")
	for _, p := range files {
		rel, _ := filepath.Rel(campus, p)
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if b := resolveJSON(t, dir); !bytes.Equal(b, first) {
		t.Error("a copy of the tree created in another order resolves differently")
	}
}
