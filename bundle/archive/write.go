package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"aead.dev/minisign"

	"github.com/lbctl/lbctl/bundle/sign"
)

// File is one payload file of a bundle.
type File struct {
	// Path is a relative, slash-separated name (see CheckPath).
	Path string
	Data []byte
}

// gzipLevel trades a little size for speed: bundles are small and built
// often.
const gzipLevel = gzip.DefaultCompression

// Write writes a signed bundle of files to w and returns its manifest.
//
// From m, Site, Serial, Created (required), Expires and Revision are used; Created
// and Expires are converted to UTC and truncated to whole seconds. Format,
// KeyID and Files are computed and must be left zero. Files may come in any
// order; they are written sorted by path, and their paths must be safe
// (CheckPath) and unique, and the bundle must fit DefaultLimits (member
// count and sizes; the compression ratio of ordinary configuration files is
// far below the limit). The output depends only on the arguments, so equal
// inputs give equal bytes.
func Write(w io.Writer, m Manifest, files []File, key minisign.PrivateKey) (*Manifest, error) {
	if err := m.prepare(key); err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	sorted := make([]File, len(files))
	copy(sorted, files)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var err error
	if m.Files, err = fileEntries(sorted); err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	// A bundle that readers with default limits would refuse is not
	// written at all.
	if err := m.check(DefaultLimits()); err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	manifest, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	sig := signManifest(key, m.Serial, manifest)
	if err := writeMembers(w, m.Created, manifest, sig, sorted); err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	return &m, nil
}

// prepare checks the fields Write takes from the caller and sets the
// computed ones but Files.
func (m *Manifest) prepare(key minisign.PrivateKey) error {
	if m.Format != 0 || m.KeyID != "" || m.Files != nil {
		return errors.New("Format, KeyID and Files are computed and must be zero")
	}
	if m.Created.IsZero() {
		return errors.New("creation time not set")
	}
	if m.Site != "" {
		if err := CheckSite(m.Site); err != nil {
			return err
		}
	}
	m.Format = FormatVersion
	m.Created = m.Created.UTC().Truncate(time.Second)
	if m.Expires != nil {
		e := m.Expires.UTC().Truncate(time.Second)
		if !e.After(m.Created) {
			return fmt.Errorf("expiry %s not after creation %s", e.Format(time.RFC3339), m.Created.Format(time.RFC3339))
		}
		m.Expires = &e
	}
	m.KeyID = sign.FormatKeyID(key.ID())
	return nil
}

// fileEntries are the manifest entries of files sorted by path: each path
// safe, not reserved, fit for a ustar header and given once.
func fileEntries(sorted []File) ([]FileEntry, error) {
	entries := make([]FileEntry, len(sorted))
	for i, f := range sorted {
		if err := CheckPath(f.Path); err != nil {
			return nil, err
		}
		if f.Path == ManifestName || f.Path == SignatureName {
			return nil, fmt.Errorf("%q is a reserved name", f.Path)
		}
		if !fitsUSTAR(f.Path) {
			return nil, fmt.Errorf("%q: not an ASCII name that fits a ustar header (100 bytes, or 155+100 split at a slash)", f.Path)
		}
		if i > 0 && sorted[i-1].Path == f.Path {
			return nil, fmt.Errorf("%q given twice", f.Path)
		}
		sum := sha256.Sum256(f.Data)
		entries[i] = FileEntry{Path: f.Path, Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])}
	}
	return entries, nil
}

// writeMembers writes the gzipped tar stream: manifest, signature, then
// the files, every header and the gzip header dated created.
func writeMembers(w io.Writer, created time.Time, manifest, sig []byte, sorted []File) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	zw, err := gzip.NewWriterLevel(bw, gzipLevel)
	if err != nil {
		return err
	}
	zw.ModTime = created
	zw.OS = gzipOS // unknown: the same bytes on every OS
	tw := tar.NewWriter(zw)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(memberHeader(name, int64(len(data)), created)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put(ManifestName, manifest); err != nil {
		return err
	}
	if err := put(SignatureName, sig); err != nil {
		return err
	}
	for _, f := range sorted {
		if err := put(f.Path, f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// signManifest signs manifest bytes with a pre-hashed (BLAKE2b) minisign
// signature, the minisign tool's default, with lbctl's trusted comment.
func signManifest(key minisign.PrivateKey, serial uint64, manifest []byte) []byte {
	r := minisign.NewReader(bytes.NewReader(manifest))
	io.Copy(io.Discard, r) // cannot fail on a byte slice
	untrusted := "signature from lbctl secret key " + sign.FormatKeyID(key.ID())
	return r.SignWithComments(key, TrustedComment(serial, manifest), untrusted)
}

// fitsUSTAR reports whether a name can be stored in a plain USTAR header:
// ASCII, and at most 100 bytes or split at a slash into a prefix of at most
// 155 and a name of at most 100 bytes.
func fitsUSTAR(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return false
		}
	}
	if len(name) <= 100 {
		return true
	}
	for i := len(name) - 1; i > 0; i-- {
		if name[i] == '/' && i <= 155 && len(name)-i-1 <= 100 {
			return len(name)-i-1 > 0
		}
	}
	return false
}
