package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// ErrExists is returned by Extract when the target directory exists.
var ErrExists = errors.New("target exists")

// Extract writes the payload files of a verified bundle (from Read) into
// dir, which must not exist yet: the files go to a temporary directory next
// to dir (directories 0755, files 0644, all synced) that is renamed to dir
// as a whole, so dir appears complete or not at all. Paths and hashes are
// checked again against the manifest before anything is written, and every
// write goes through an os.Root confined to the temporary directory.
func Extract(b *Bundle, dir string) error {
	if err := checkExtract(b); err != nil {
		return fmt.Errorf("extract bundle: %w", err)
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("extract bundle: %s: %w", dir, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("extract bundle: %w", err)
	}
	parent := filepath.Dir(dir)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("extract bundle: %w", err)
	}
	if err := writeTree(tmp, b.Files); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("extract bundle: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("extract bundle: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("extract bundle: %w", err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("extract bundle: %w", err)
	}
	return nil
}

// checkExtract re-checks that b's files are exactly its manifest's.
func checkExtract(b *Bundle) error {
	if b == nil {
		return errors.New("no bundle")
	}
	if len(b.Files) != len(b.Manifest.Files) {
		return fmt.Errorf("%d files, manifest lists %d: %w", len(b.Files), len(b.Manifest.Files), ErrMissingMember)
	}
	for i, f := range b.Files {
		want := b.Manifest.Files[i]
		if err := CheckPath(f.Path); err != nil {
			return err
		}
		if f.Path != want.Path {
			return fmt.Errorf("file %q, manifest lists %q: %w", f.Path, want.Path, ErrMemberOrder)
		}
		sum := sha256.Sum256(f.Data)
		if int64(len(f.Data)) != want.Size || hex.EncodeToString(sum[:]) != want.SHA256 {
			return fmt.Errorf("file %q: %w", f.Path, ErrHashMismatch)
		}
	}
	return nil
}

func writeTree(dir string, files []File) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	dirs := map[string]bool{".": true}
	for _, f := range files {
		if d := path.Dir(f.Path); !dirs[d] {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
			for ; !dirs[d]; d = path.Dir(d) {
				if err := root.Chmod(d, 0o755); err != nil {
					return err
				}
				dirs[d] = true
			}
		}
		w, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if err = w.Chmod(0o644); err == nil {
			_, err = w.Write(f.Data)
		}
		if err == nil {
			err = w.Sync()
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := syncDir(filepath.Join(dir, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
