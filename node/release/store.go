// Package release owns the node's releases store under /var/lib/lbctl:
// staged releases, the `current` symlink that says which one is committed,
// the intent record that makes an install crash-safe, the append-only install
// log and the install lock.
//
//	/var/lib/lbctl/
//	  releases/<serial>/bundle   the signed bundle as received
//	  releases/<serial>/state.json   the node state rendered for this node
//	  current -> releases/<serial>   swapped atomically (temp name + rename)
//	  intent.json                present only while an install is under way
//	  install.log                one JSON line per install, rollback or recovery
//	  lock                       flock(2) held by the one install at a time
//	  highest-serial.json        the highest serial ever committed here (anti-replay)
//	  site.json                  the site this node's releases belong to, pinned by its first install
//
// highest-serial.json lives outside releases/ on purpose: pruning, a
// rollback or deleting the releases store leaves it, and the .deb has no
// postrm, so removing or purging the package leaves all of /var/lib/lbctl.
// Only deleting the file (or the state directory) by hand forgets it; the
// node's min_serial in lbctl.yaml is the floor that survives even that.
//
// Every file is written to a temporary name, fsynced and renamed, and the
// parent directory fsynced, so a crash leaves the old file or the new one.
package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/nodeapi"
)

// DefaultRoot is where a node keeps its releases.
const DefaultRoot = "/var/lib/lbctl"

// Keep is how many releases the store keeps after a commit.
const Keep = 5

// ErrLocked is returned by Lock when another install holds the lock and the
// caller asked not to wait.
var ErrLocked = errors.New("another lbctl install is running")

// ErrNoRelease is returned when a release or the current one does not exist.
var ErrNoRelease = errors.New("no such release")

// Store is a releases store rooted at a directory.
type Store struct {
	Root string
}

// Open returns the store at root, creating its directories. Commands that
// change the node use it; read-only ones use OpenExisting.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(root, "releases"), 0o750); err != nil {
		return nil, fmt.Errorf("releases store: %w", err)
	}
	return &Store{Root: root}, nil
}

// ErrNoState is returned by OpenExisting when the node has no state
// directory: nothing was ever installed here.
var ErrNoState = errors.New("nothing installed on this node")

// ErrPermission is returned by OpenExisting when the state directory
// cannot be read by this user.
var ErrPermission = errors.New("permission denied: the node's state is readable by root only (run as root)")

// OpenExisting returns the store at root without creating anything: the
// error wraps ErrNoState when root does not exist and ErrPermission when
// this user may not read it.
func OpenExisting(root string) (*Store, error) {
	_, err := os.ReadDir(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("releases store %s does not exist: %w", root, ErrNoState)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("releases store %s: %w", root, ErrPermission)
	case err != nil:
		return nil, fmt.Errorf("releases store: %w", err)
	}
	return &Store{Root: root}, nil
}

// Release is one staged release.
type Release struct {
	Serial uint64
	// Bundle is the signed bundle as received.
	Bundle []byte
	State  *plan.State
}

func (s *Store) dir(serial uint64) string {
	return filepath.Join(s.Root, "releases", strconv.FormatUint(serial, 10))
}

// Stage writes a release into releases/<serial>/ as a whole: the files go to
// a temporary directory that is renamed into place. Staging a serial that
// exists already replaces it.
func (s *Store) Stage(r *Release) error {
	st, err := json.MarshalIndent(r.State, "", "  ")
	if err != nil {
		return fmt.Errorf("stage release %d: %w", r.Serial, err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.Root, "releases"), ".staging-")
	if err != nil {
		return fmt.Errorf("stage release %d: %w", r.Serial, err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{"bundle": r.Bundle, "state.json": st} {
		if err := writeSync(filepath.Join(tmp, name), data, 0o640); err != nil {
			return fmt.Errorf("stage release %d: %w", r.Serial, err)
		}
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("stage release %d: %w", r.Serial, err)
	}
	final := s.dir(r.Serial)
	// A staged directory of the same serial is replaced: move it aside
	// first, since rename(2) does not replace a non-empty directory.
	if _, err := os.Stat(final); err == nil {
		if s.currentTarget() == final {
			// The committed release is immutable.
			return nil
		}
		if err := os.RemoveAll(final); err != nil {
			return fmt.Errorf("stage release %d: %w", r.Serial, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("stage release %d: %w", r.Serial, err)
	}
	return syncDir(filepath.Dir(final))
}

// Load reads a staged release.
func (s *Store) Load(serial uint64) (*Release, error) {
	dir := s.dir(serial)
	b, err := os.ReadFile(filepath.Join(dir, "bundle"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("release %d: %w", serial, ErrNoRelease)
	}
	if err != nil {
		return nil, fmt.Errorf("release %d: %w", serial, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, fmt.Errorf("release %d: %w", serial, err)
	}
	var st plan.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("release %d: state.json: %w", serial, err)
	}
	return &Release{Serial: serial, Bundle: b, State: &st}, nil
}

// Firewall returns the firewall of a staged release (what the agent hands
// to the flow handoff datapath).
func (s *Store) Firewall(serial uint64) (model.Firewall, error) {
	r, err := s.Load(serial)
	if err != nil {
		return model.Firewall{}, err
	}
	return r.State.Firewall, nil
}

func (s *Store) currentTarget() string {
	t, err := os.Readlink(filepath.Join(s.Root, "current"))
	if err != nil {
		return ""
	}
	if !filepath.IsAbs(t) {
		t = filepath.Join(s.Root, t)
	}
	return t
}

// Current returns the serial of the committed release; ok is false when
// nothing was ever committed.
func (s *Store) Current() (serial uint64, ok bool, err error) {
	t, err := os.Readlink(filepath.Join(s.Root, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("current release: %w", err)
	}
	n, err := strconv.ParseUint(filepath.Base(t), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("current release: bad link %q", t)
	}
	return n, true, nil
}

// Commit makes serial the current release: the symlink is created under a
// temporary name and renamed over `current`, then the directory is fsynced.
func (s *Store) Commit(serial uint64) error {
	if _, err := os.Stat(s.dir(serial)); err != nil {
		return fmt.Errorf("commit release %d: %w", serial, ErrNoRelease)
	}
	link := filepath.Join(s.Root, "current")
	if err := renameio.Symlink(filepath.Join("releases", strconv.FormatUint(serial, 10)), link); err != nil {
		return fmt.Errorf("commit release %d: %w", serial, err)
	}
	return syncDir(s.Root)
}

// Serials lists the staged releases, oldest first.
func (s *Store) Serials() ([]uint64, error) {
	ents, err := os.ReadDir(filepath.Join(s.Root, "releases"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && e.IsDir() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Prune removes all but the newest keep releases, never the current one.
func (s *Store) Prune(keep int) error {
	serials, err := s.Serials()
	if err != nil {
		return err
	}
	cur, _, _ := s.Current()
	var errs []error
	for i := 0; i < len(serials)-keep; i++ {
		if serials[i] == cur {
			continue
		}
		if err := os.RemoveAll(s.dir(serials[i])); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Intent is the record written before an install changes anything (its JSON
// is part of `lbctl status --json`, hence declared in nodeapi). While it
// exists, the node may hold a mix of releases From and To; recovery restores
// From.
type Intent = nodeapi.Intent

// WriteIntent records that an install is about to change the node.
func (s *Store) WriteIntent(in Intent) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(s.Root, "intent.json"), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write intent record: %w", err)
	}
	return syncDir(s.Root)
}

// ReadIntent returns the pending intent record, or nil if there is none.
func (s *Store) ReadIntent() (*Intent, error) {
	var in Intent
	if ok, err := s.readJSON("intent.json", "read intent record", &in); !ok {
		return nil, err
	}
	return &in, nil
}

// readJSON decodes the file name of the store into v; ok is false, and v
// untouched, when the file does not exist or on an error (prefixed with
// what).
func (s *Store) readJSON(name, what string, v any) (ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(s.Root, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return true, nil
}

// ClearIntent removes the intent record once the node is in a committed
// state again.
func (s *Store) ClearIntent() error {
	err := os.Remove(filepath.Join(s.Root, "intent.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear intent record: %w", err)
	}
	return syncDir(s.Root)
}

// LogEntry is one line of the install log (declared in nodeapi: `lbctl
// status --json` carries the last one).
type LogEntry = nodeapi.LogEntry

// Log appends an entry to the install log and syncs it.
func (s *Store) Log(e LogEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.Root, "install.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("install log: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("install log: %w", err)
	}
	return nil
}

// History reads the install log, oldest first.
func (s *Store) History() ([]LogEntry, error) {
	b, err := os.ReadFile(filepath.Join(s.Root, "install.log"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("install log: %w", err)
	}
	var out []LogEntry
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		var e LogEntry
		if json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// Lock takes the install lock. With wait false it fails at once with
// ErrLocked when another process holds it.
func (s *Store) Lock(wait bool) (unlock func(), err error) {
	return s.lock(wait, true)
}

// LockIfExists takes the install lock like Lock, but creates nothing: when
// the lock file does not exist (no install ever ran here) it returns a
// no-op unlock. Dry runs use it.
func (s *Store) LockIfExists(wait bool) (unlock func(), err error) {
	return s.lock(wait, false)
}

func (s *Store) lock(wait, create bool) (unlock func(), err error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(filepath.Join(s.Root, "lock"), flags, 0o600)
	if !create && errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("install lock: %w: %w", ErrPermission, err)
	}
	if err != nil {
		return nil, fmt.Errorf("install lock: %w", err)
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("install lock: %w", err)
	}
	return func() { f.Close() }, nil
}

func writeSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	return errors.Join(werr, serr, f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// WriteAnnounceable replaces the announceable set (announce.json, the VIPs
// this node may announce, read by the agent) atomically.
func (s *Store) WriteAnnounceable(a health.Announceable) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(s.Root, "announce.json"), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write announceable set: %w", err)
	}
	return nil
}

// ReadAnnounceable returns the announceable set (empty when none was
// written).
func (s *Store) ReadAnnounceable() (health.Announceable, error) {
	var a health.Announceable
	_, err := s.readJSON("announce.json", "read announceable set", &a)
	return a, err
}

// ReadDrains returns the drain state.
func (s *Store) ReadDrains() (health.Drains, error) {
	var d health.Drains
	_, err := s.readJSON("drain.json", "read drain state", &d)
	return d, err
}

// WriteDrains replaces the drain state atomically.
func (s *Store) WriteDrains(d health.Drains) error {
	slices.Sort(d.VIPs)
	d.VIPs = slices.Compact(d.VIPs)
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(s.Root, "drain.json"), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write drain state: %w", err)
	}
	return nil
}

// HighestName is the file of the highest serial record in the state
// directory.
const HighestName = "highest-serial.json"

// Highest records the highest serial this node ever committed, and which
// bundle it was, so that no older bundle (and no other bundle with that
// serial) is installed again without the operator saying so. Rollbacks and
// forced downgrades never lower it.
type Highest struct {
	Serial uint64 `json:"serial"`
	// ManifestSHA256 is the SHA-256 of the signed manifest of the bundle
	// committed with Serial.
	ManifestSHA256 string    `json:"manifest_sha256"`
	Time           time.Time `json:"time"`
}

// ReadHighest returns the highest serial record; ok is false when there is
// none.
func (s *Store) ReadHighest() (h Highest, ok bool, err error) {
	ok, err = s.readJSON(HighestName, "highest serial record "+filepath.Join(s.Root, HighestName), &h)
	return h, ok, err
}

// RaiseHighest records h if its serial is higher than the recorded one (or
// none is recorded); a lower or equal serial leaves the record alone. The
// file is replaced atomically and synced.
func (s *Store) RaiseHighest(h Highest) error {
	cur, ok, err := s.ReadHighest()
	if err != nil {
		return err
	}
	if ok && h.Serial <= cur.Serial {
		return nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(s.Root, HighestName), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("highest serial record: %w", err)
	}
	return syncDir(s.Root)
}

// SiteName is the file of the site pin in the state directory.
const SiteName = "site.json"

// SitePin records which site this node belongs to: written by the first
// install (and by an install for the site lbctl.yaml names, when the
// operator moved the node to another site). An install of a bundle of
// another site is refused. Like highest-serial.json it survives pruning,
// rollbacks and the package's removal.
type SitePin struct {
	Site string `json:"site"`
	// Serial is the release that pinned it.
	Serial uint64    `json:"serial"`
	Time   time.Time `json:"time"`
}

// SitePath is the site pin's file.
func (s *Store) SitePath() string { return filepath.Join(s.Root, SiteName) }

// ReadSite returns the site pin; ok is false when there is none.
func (s *Store) ReadSite() (p SitePin, ok bool, err error) {
	if ok, err = s.readJSON(SiteName, "site pin "+s.SitePath(), &p); ok && p.Site == "" {
		ok, err = false, fmt.Errorf("site pin %s: no site named", s.SitePath())
	}
	return p, ok, err
}

// PinSite records p as the node's site unless it is pinned to that site
// already. The file is replaced atomically and synced.
func (s *Store) PinSite(p SitePin) error {
	cur, ok, err := s.ReadSite()
	if err == nil && ok && cur.Site == p.Site {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(s.SitePath(), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("site pin: %w", err)
	}
	return syncDir(s.Root)
}
