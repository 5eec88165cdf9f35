package clix

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TreeMarker is the file WriteTree leaves in every directory it writes: a
// directory holding it is lbctl's to replace.
const TreeMarker = ".lbctl-render"

// TreeFile is one file of a tree: a slash-separated path below the
// directory and its content.
type TreeFile struct {
	Path string
	Data []byte
}

// ErrNotOurs is returned by WriteTree for a directory that has files but
// no TreeMarker.
var ErrNotOurs = errors.New("not empty and not written by lbctl render")

// WriteTree makes out hold exactly files (and TreeMarker): the tree is
// written into a new directory next to out, which then takes out's place
// in one rename (an exchange on Linux when out exists), so a reader sees
// the old tree or the new one, never a mix and never a stale file. out
// may be missing, empty, or a directory WriteTree wrote before; anything
// else is refused with ErrNotOurs and left as it is. It returns the
// written paths.
func WriteTree(out string, files []TreeFile) ([]string, error) {
	exists, err := checkTreeDir(out)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(out)), "."+filepath.Base(out)+".new-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	written, err := writeFiles(tmp, out, files)
	if err != nil {
		return nil, err
	}
	if err := swapDir(tmp, out, exists); err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	return written, nil
}

// checkTreeDir says whether out exists, and refuses it when it is not a
// directory or holds files without the marker.
func checkTreeDir(out string) (bool, error) {
	fi, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s: not a directory", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return false, err
	}
	if len(entries) == 0 {
		return true, nil
	}
	if _, err := os.Lstat(filepath.Join(out, TreeMarker)); err != nil {
		return false, fmt.Errorf("%s: %w (no %s): give a new or empty directory", out, ErrNotOurs, TreeMarker)
	}
	return true, nil
}

// writeFiles writes files and the marker below tmp and returns their
// paths as they will be below out.
func writeFiles(tmp, out string, files []TreeFile) ([]string, error) {
	var written []string
	for _, f := range files {
		rel := filepath.FromSlash(f.Path)
		if !filepath.IsLocal(rel) || strings.HasPrefix(f.Path, "/") {
			return nil, fmt.Errorf("render: file path %q leaves the output directory", f.Path)
		}
		p := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(out, rel))
	}
	marker := "Written by lbctl render, which replaces this directory as a whole.\n"
	return written, os.WriteFile(filepath.Join(tmp, TreeMarker), []byte(marker), 0o644)
}

// swapDir puts tmp in out's place; the old tree ends up in tmp (removed
// by the caller).
func swapDir(tmp, out string, exists bool) error {
	if !exists {
		return os.Rename(tmp, out)
	}
	if err := exchange(tmp, out); err == nil {
		return nil
	}
	// No atomic exchange here: move the old tree aside, then the new in.
	old := tmp + ".old"
	if err := os.Rename(out, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Rename(old, out)
		return err
	}
	return os.Rename(old, tmp)
}
