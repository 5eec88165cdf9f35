package sync

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/sign"
)

// TestRealBundles syncs from a directory of bundles written and verified by
// bundle/archive: the newest signed one is installed, one signed by an
// untrusted key or altered after signing is refused.
func TestRealBundles(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, err := minisign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{8}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	trust := sign.NewTrust(pub)
	created := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	build := func(serial uint64, key minisign.PrivateKey) []byte {
		t.Helper()
		var buf bytes.Buffer
		files := []archive.File{{Path: "resolved.json", Data: []byte(`{"format_version":2,"name":"campus","serial":` + strconv.FormatUint(serial, 10) + "}\n")}}
		if _, err := archive.Write(&buf, archive.Manifest{Serial: serial, Created: created}, files, key); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	dir := t.TempDir()
	put := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var installed []uint64
	current := uint64(0)
	inst := Installer{
		Verify: func(b []byte) (uint64, error) {
			v, err := archive.Read(bytes.NewReader(b), trust, created.Add(time.Hour), archive.Limits{})
			if err != nil {
				return 0, err
			}
			return v.Manifest.Serial, nil
		},
		Current: func() (uint64, bool, error) { return current, current != 0, nil },
		Install: func(_ context.Context, b []byte) error {
			v, err := archive.Read(bytes.NewReader(b), trust, created.Add(time.Hour), archive.Limits{})
			if err != nil {
				t.Errorf("Install got a bundle that does not verify: %v", err)
				return err
			}
			current = v.Manifest.Serial
			installed = append(installed, current)
			return nil
		},
	}
	src := DirSource{Dir: dir}
	put("campus-100.bundle", build(100, priv))
	put("campus-101.bundle", build(101, priv))
	if res, err := Sync(context.Background(), src, inst, Options{}); err != nil || res.Action != Installed || current != 101 {
		t.Fatalf("signed: %+v, %v", res, err)
	}

	put("campus-102.bundle", build(102, otherPriv))
	if _, err := Sync(context.Background(), src, inst, Options{}); !errors.Is(err, ErrRefused) || !errors.Is(err, archive.ErrUntrustedKey) {
		t.Errorf("untrusted key: %v", err)
	}
	os.Remove(filepath.Join(dir, "campus-102.bundle"))

	b := build(103, priv)
	tampered := bytes.Clone(b)
	tampered[len(tampered)/2] ^= 0x40
	put("campus-103.bundle", tampered)
	if _, err := Sync(context.Background(), src, inst, Options{}); !errors.Is(err, ErrRefused) {
		t.Errorf("tampered: %v", err)
	}
	put("campus-103.bundle", b)
	if res, err := Sync(context.Background(), src, inst, Options{}); err != nil || res.Action != Installed {
		t.Errorf("after repair: %+v, %v", res, err)
	}
	if want := []uint64{101, 103}; len(installed) != 2 || installed[0] != want[0] || installed[1] != want[1] {
		t.Errorf("installed %v, want %v", installed, want)
	}
}
