package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// BundleExt is the extension of bundle files in a directory source.
const BundleExt = ".bundle"

// DefaultMaxSize bounds a fetched bundle (compressed). Bundles of a
// 10,000-service site are a few MB.
const DefaultMaxSize = 256 << 20

// DirSource is a directory of published bundles named
// `<name>-<serial>.bundle` (e.g. `S=$(date +%s); lbctl build --serial $S
// -o campus-$S.bundle ...`). The file with the highest serial in its name is the newest; only
// that one is read and verified, and its signed serial must match its name.
// Other names, hidden files and directories are ignored.
type DirSource struct {
	Dir string
	// MaxSize bounds the file read; default DefaultMaxSize.
	MaxSize int64
}

func (d DirSource) String() string { return d.Dir }

// ParseBundleName returns the serial of a `<name>-<serial>.bundle` file
// name.
func ParseBundleName(name string) (uint64, bool) {
	if strings.HasPrefix(name, ".") {
		return 0, false
	}
	base, ok := strings.CutSuffix(name, BundleExt)
	if !ok {
		return 0, false
	}
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return 0, false
	}
	digits := base[i+1:]
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// Newest returns the path and name serial of the newest bundle file in the
// directory; among equal serials the first name in byte order wins.
func (d DirSource) Newest() (string, uint64, error) {
	ents, err := os.ReadDir(d.Dir)
	if err != nil {
		return "", 0, fmt.Errorf("bundle directory: %w", err)
	}
	var best string
	var serial uint64
	for _, e := range ents { // sorted by name
		n, ok := ParseBundleName(e.Name())
		if !ok || n <= serial {
			continue
		}
		p := filepath.Join(d.Dir, e.Name())
		fi, err := os.Stat(p) // follows symlinks
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		best, serial = p, n
	}
	if best == "" {
		return "", 0, fmt.Errorf("bundle directory %s: no <name>-<serial>%s file: %w", d.Dir, BundleExt, ErrPermanent)
	}
	return best, serial, nil
}

// Fetch reads the newest bundle file.
func (d DirSource) Fetch(ctx context.Context, _ uint64, _ bool) (*Fetched, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, serial, err := d.Newest()
	if err != nil {
		return nil, err
	}
	max := d.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", p, max, errors.Join(ErrPermanent, ErrRefused))
	}
	return &Fetched{Data: b, Origin: p, NameSerial: serial}, nil
}
