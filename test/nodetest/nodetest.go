// Package nodetest holds what the node side's tests share: a trusted
// signing key, signed bundles of a model, and snapshots of a directory tree
// to show that a refused operation changed nothing. Tests import it; the
// product never does.
package nodetest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"aead.dev/minisign"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/pack"
	"github.com/lbctl/lbctl/bundle/sign"
)

// Key is an admins' signing key whose public half a node trusts.
type Key struct {
	Priv minisign.PrivateKey
	Pub  minisign.PublicKey
	// TrustedDir is a trust directory holding the public key (as
	// ops.pub), as /etc/lbctl/trusted.d on a node.
	TrustedDir string
}

// NewKey makes the key pair derived from seed (the same seed, the same
// key) and a trust directory for it in a temporary directory of t.
func NewKey(t testing.TB, seed byte) Key {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	k := Key{Priv: priv, Pub: pub, TrustedDir: filepath.Join(t.TempDir(), "trusted.d")}
	if err := os.Mkdir(k.TrustedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.TrustedDir, "ops.pub"), sign.MarshalPublicKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// Sign writes a bundle of files with manifest m, signed with k.
func (k Key) Sign(m archive.Manifest, files []archive.File) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := archive.Write(&buf, m, files, k.Priv); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Bundle is the signed bundle of site (the files `lbctl build` packs) with
// manifest m, which names the site as build's does.
func (k Key) Bundle(t testing.TB, site *model.Site, m archive.Manifest) []byte {
	t.Helper()
	m = pack.Manifest(site, m)
	files, err := pack.Files(site)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Sign(m, files)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Tree is a snapshot of a directory tree: every path under the root
// (slash-separated, relative; "." is the root) with a file's content, "->
// TARGET" for a symbolic link or "dir".
type Tree map[string]string

// Snapshot reads the tree under root (a missing root is an empty tree).
func Snapshot(t testing.TB, root string) Tree {
	t.Helper()
	out := Tree{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			out[rel] = "-> " + l
			return err
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			out[rel] = string(b)
			return err
		default:
			out[rel] = "dir"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Diff lists what differs from tree a to b, sorted: "changed PATH",
// "created PATH", "removed PATH".
func (a Tree) Diff(b Tree) []string {
	var out []string
	for k, v := range a {
		w, ok := b[k]
		switch {
		case !ok:
			out = append(out, "removed "+k)
		case w != v:
			out = append(out, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "created "+k)
		}
	}
	slices.Sort(out)
	return out
}

// Same fails t for every difference from before to after; what names the
// operation in between.
func Same(t testing.TB, what string, before, after Tree) {
	t.Helper()
	for _, d := range before.Diff(after) {
		t.Errorf("%s %s", what, d)
	}
}
