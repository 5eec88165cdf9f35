package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is the bundle format this package writes and reads.
const FormatVersion = 1

// Names of the two leading members.
const (
	ManifestName  = "MANIFEST.json"
	SignatureName = "MANIFEST.json.minisig"
)

// Manifest describes a bundle. Its canonical JSON encoding (Encode) is what
// gets signed.
type Manifest struct {
	// Format is FormatVersion.
	Format int `json:"format"`
	// Site is the name of the site the bundle belongs to (site.yaml's
	// `site`, the resolved model's name), signed with the rest: a node
	// refuses a bundle of another site than its own. Empty in bundles
	// built before sites were named here; their site is then the one
	// the resolved model names.
	Site string `json:"site,omitempty"`
	// Serial orders bundles: a node installs only newer serials.
	Serial uint64 `json:"serial"`
	// Created is the build time, UTC, whole seconds.
	Created time.Time `json:"created"`
	// Expires, if set, is when nodes stop accepting the bundle (UTC, whole
	// seconds).
	Expires *time.Time `json:"expires,omitempty"`
	// Revision is the source revision of the intents tree (e.g. a git
	// commit), if known.
	Revision string `json:"revision,omitempty"`
	// KeyID is the signing key's minisign key ID (16 upper-case hex digits).
	KeyID string `json:"key_id"`
	// Files are the payload files sorted by path.
	Files []FileEntry `json:"files"`
}

// FileEntry is one payload file of the manifest.
type FileEntry struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// SHA256 is the lower-case hex SHA-256 of the file's bytes.
	SHA256 string `json:"sha256"`
}

// Encode returns the canonical encoding of m: indented JSON with a trailing
// newline.
func (m *Manifest) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeManifest parses signed manifest bytes, refusing unknown fields,
// trailing data and any encoding other than the canonical one (so what a
// person reads in MANIFEST.json is exactly what was checked).
func decodeManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the manifest object", ErrBadManifest)
	}
	// The format is checked before canonical form: a future format may
	// add fields, and its error should say "format", not "malformed".
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("manifest format %d, want %d: %w", m.Format, FormatVersion, ErrFormatVersion)
	}
	canon, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrBadManifest)
	}
	return &m, nil
}

// check validates a decoded manifest against the limits: safe, sorted,
// unique paths, sane sizes and hashes, member count and total size bounds.
func (m *Manifest) check(lim Limits) error {
	if !isCanonicalTime(m.Created) {
		return fmt.Errorf("%w: created %s is not UTC whole seconds", ErrBadManifest, m.Created)
	}
	if m.Expires != nil && !isCanonicalTime(*m.Expires) {
		return fmt.Errorf("%w: expires %s is not UTC whole seconds", ErrBadManifest, *m.Expires)
	}
	if m.Site != "" {
		if err := CheckSite(m.Site); err != nil {
			return fmt.Errorf("%w: %v", ErrBadManifest, err)
		}
	}
	if int64(len(m.Files))+2 > int64(lim.MaxMembers) {
		return fmt.Errorf("%d files, limit %d members: %w", len(m.Files), lim.MaxMembers, ErrTooManyMembers)
	}
	var total int64
	for i, f := range m.Files {
		if err := CheckPath(f.Path); err != nil {
			return fmt.Errorf("manifest file %d: %w", i, err)
		}
		if f.Path == ManifestName || f.Path == SignatureName {
			return fmt.Errorf("manifest file %q: reserved name: %w", f.Path, ErrDuplicate)
		}
		if i > 0 {
			switch prev := m.Files[i-1].Path; {
			case prev == f.Path:
				return fmt.Errorf("manifest file %q: listed twice: %w", f.Path, ErrDuplicate)
			case prev > f.Path:
				return fmt.Errorf("%w: files not sorted (%q after %q)", ErrBadManifest, f.Path, prev)
			}
		}
		if f.Size < 0 {
			return fmt.Errorf("%w: file %q: negative size", ErrBadManifest, f.Path)
		}
		if f.Size > lim.MaxMemberSize {
			return fmt.Errorf("file %q: %d bytes, limit %d: %w", f.Path, f.Size, lim.MaxMemberSize, ErrMemberTooLarge)
		}
		if total += f.Size; total > lim.MaxTotalSize {
			return fmt.Errorf("files total more than %d bytes: %w", lim.MaxTotalSize, ErrTooLarge)
		}
		if len(f.SHA256) != sha256.Size*2 || hex.EncodeToString(mustHex(f.SHA256)) != f.SHA256 {
			return fmt.Errorf("%w: file %q: sha256 is not 64 lower-case hex digits", ErrBadManifest, f.Path)
		}
	}
	return nil
}

// maxSite bounds a site name (the resolved model's name grammar).
const maxSite = 128

// CheckSite checks a site name's grammar: 1 to 128 of [A-Za-z0-9._-],
// starting with a letter or digit (the resolved model's name grammar).
func CheckSite(s string) error {
	if s == "" || len(s) > maxSite {
		return fmt.Errorf("site name %q: want 1 to %d characters", s, maxSite)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("site name %q: want [A-Za-z0-9._-], starting with a letter or digit", s)
		}
	}
	return nil
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

func isCanonicalTime(t time.Time) bool {
	_, off := t.Zone()
	return off == 0 && t.Nanosecond() == 0 && !t.IsZero()
}

// TrustedComment is the minisign trusted comment lbctl signs with a
// manifest.
func TrustedComment(serial uint64, manifest []byte) string {
	sum := sha256.Sum256(manifest)
	return fmt.Sprintf("serial:%d manifest-sha256:%s", serial, hex.EncodeToString(sum[:]))
}

// ResolvedFile is the payload member holding the resolved model
// (model.Site) by convention of lbctl build; inspect summarises it.
const ResolvedFile = "resolved.json"
