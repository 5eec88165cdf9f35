package intent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lbctl/lbctl/bundle/inventory"
	"github.com/lbctl/lbctl/bundle/model"
)

// FuzzLoad feeds arbitrary bytes to the loader as a service file and as a
// defaults file, and resolves what loads. It must never panic; every error
// must name a file; results must be deterministic.
func FuzzLoad(f *testing.F) {
	for _, root := range []string{campus, "testdata"} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
				if b, err := os.ReadFile(p); err == nil {
					f.Add(b, []byte("defaults:\n  backend: web\n"))
				}
			}
			return nil
		})
	}
	f.Add([]byte("fqdn: web.example.org\ntls: on\nbackend: {group: web, software: postfix}\n"), []byte("lock: [tls]\npolicy: {vip_prefixes: [192.0.2.0/24]}\n"))
	f.Add([]byte("a: &a [*a]\n"), []byte("x: &x {<<: *x}\n"))
	inv, err := inventory.Parse("inventory.yaml", []byte(testInventory))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, svc, defaults []byte) {
		fsys := fstest.MapFS{
			SiteFileName:             {Data: []byte("site: fuzz\n")},
			"team/defaults.yaml":     {Data: defaults},
			"team/svc.yaml":          {Data: svc},
			"team/other.yaml":        {Data: []byte("fqdn: other.example.org\nbackend: web\n")},
			"nodes/lb1.yaml":         {Data: svc},
			"team/sub/nested.yaml":   {Data: svc},
			"team/sub/defaults.yaml": {Data: svc},
		}
		tree, err := LoadFS(fsys, "fuzz")
		if err != nil {
			checkErrors(t, err)
			return
		}
		a, errA := tree.Resolve(context.Background(), testDNS, inv)
		b, errB := tree.Resolve(context.Background(), testDNS, inv)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("resolve is not deterministic: %v / %v", errA, errB)
		}
		if errA != nil {
			checkErrors(t, errA)
			if errA.Error() != errB.Error() {
				t.Fatalf("errors differ between runs:\n%v\n---\n%v", errA, errB)
			}
			return
		}
		ja, err := model.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		jb, _ := model.Encode(b)
		if !bytes.Equal(ja, jb) {
			t.Fatal("resolved model differs between runs")
		}
		if _, err := model.Decode(ja); err != nil {
			t.Fatalf("resolved model does not decode: %v", err)
		}
	})
}

func checkErrors(t *testing.T, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, not Errors: %v", err, err)
	}
	for i, e := range es {
		if !strings.HasPrefix(e.Pos.File, "fuzz") {
			t.Errorf("error without a file: %v", e)
		}
		if i > 0 && es[i-1].Pos.File > e.Pos.File {
			t.Errorf("errors not sorted by file: %v before %v", es[i-1], e)
		}
	}
}
