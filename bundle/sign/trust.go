package sign

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"aead.dev/minisign"
)

// DefaultTrustDir is where a node looks for trusted public keys.
const DefaultTrustDir = "/etc/lbctl/trusted.d"

// RevokedFile is the name, inside a trust directory, of the list of revoked
// key IDs.
const RevokedFile = "revoked"

// Errors of key lookups.
var (
	// ErrUntrustedKey means a signature was made by a key that is not trusted.
	ErrUntrustedKey = errors.New("signed by an untrusted key")
	// ErrRevokedKey means a signature was made by a revoked key.
	ErrRevokedKey = errors.New("signed by a revoked key")
	// ErrNoTrustedKeys means a trust directory holds no public key.
	ErrNoTrustedKeys = errors.New("no trusted public keys")
)

// Trust is a set of trusted public keys and of revoked key IDs. Revocation
// wins over trust. The zero value trusts nothing.
type Trust struct {
	keys    map[uint64]minisign.PublicKey
	revoked map[uint64]bool
}

// NewTrust returns a Trust holding the given keys.
func NewTrust(keys ...minisign.PublicKey) *Trust {
	t := &Trust{}
	for _, k := range keys {
		t.Add(k)
	}
	return t
}

// Add trusts a public key.
func (t *Trust) Add(k minisign.PublicKey) {
	if t.keys == nil {
		t.keys = make(map[uint64]minisign.PublicKey)
	}
	t.keys[k.ID()] = k
}

// Revoke marks a key ID as revoked.
func (t *Trust) Revoke(id uint64) {
	if t.revoked == nil {
		t.revoked = make(map[uint64]bool)
	}
	t.revoked[id] = true
}

// KeyIDs returns the trusted, non-revoked key IDs in ascending order.
func (t *Trust) KeyIDs() []uint64 {
	var ids []uint64
	for id := range t.keys {
		if !t.revoked[id] {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Revoked returns the revoked key IDs in ascending order.
func (t *Trust) Revoked() []uint64 {
	var ids []uint64
	for id := range t.revoked {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Lookup returns the public key for a key ID: ErrRevokedKey if the ID is
// revoked, ErrUntrustedKey if no trusted key has it.
func (t *Trust) Lookup(id uint64) (minisign.PublicKey, error) {
	if t == nil {
		return minisign.PublicKey{}, fmt.Errorf("key %s: %w", FormatKeyID(id), ErrUntrustedKey)
	}
	if t.revoked[id] {
		return minisign.PublicKey{}, fmt.Errorf("key %s: %w", FormatKeyID(id), ErrRevokedKey)
	}
	k, ok := t.keys[id]
	if !ok {
		return minisign.PublicKey{}, fmt.Errorf("key %s: %w", FormatKeyID(id), ErrUntrustedKey)
	}
	return k, nil
}

// LoadTrustDir reads a trust directory: every *.pub file is a trusted
// minisign public key and the optional file "revoked" lists revoked key IDs.
// A malformed key file or revocation line is an error, not skipped; so are
// two different keys with the same ID. A directory without any public key
// gives ErrNoTrustedKeys.
func LoadTrustDir(dir string) (*Trust, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.pub"))
	if err != nil {
		return nil, fmt.Errorf("trust dir %s: %w", dir, err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("trust dir: %w", err)
	}
	sort.Strings(matches)
	t := &Trust{}
	var errs []error
	from := map[uint64]string{}
	for _, path := range matches {
		k, err := LoadPublicKey(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := t.keys[k.ID()]; ok && !prev.Equal(k) {
			errs = append(errs, fmt.Errorf("public key %s: key id %s also used by a different key in %s", path, FormatKeyID(k.ID()), from[k.ID()]))
			continue
		}
		from[k.ID()] = path
		t.Add(k)
	}
	revPath := filepath.Join(dir, RevokedFile)
	data, err := readSmallN(revPath, 1<<20)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		errs = append(errs, fmt.Errorf("revoked keys: %w", err))
	default:
		sc := bufio.NewScanner(bytes.NewReader(data))
		for line := 1; sc.Scan(); line++ {
			s, _, _ := strings.Cut(sc.Text(), "#")
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			id, err := ParseKeyID(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %w", revPath, line, err))
				continue
			}
			t.Revoke(id)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("trust dir %s: %w", dir, err)
	}
	if len(t.keys) == 0 {
		return nil, fmt.Errorf("trust dir %s: %w", dir, ErrNoTrustedKeys)
	}
	return t, nil
}
