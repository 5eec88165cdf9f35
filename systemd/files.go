package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/lbctl/lbctl/bundle/model"
)

// Instance is what the unit files need to know about one VIP.
type Instance struct {
	// Name is the VIP name (the unit's instance name).
	Name string
	// Transparent VIPs get the CAP_NET_ADMIN drop-in.
	Transparent bool
}

// Instances maps the resolved model's VIPs to unit instances.
func Instances(vips []model.VIP) []Instance {
	out := make([]Instance, 0, len(vips))
	for _, v := range vips {
		out = append(out, Instance{Name: v.Name, Transparent: v.Transparent})
	}
	return out
}

// File is one file in a unit directory.
type File struct {
	// Name is the path relative to the unit directory, with '/' separators
	// ("lb-haproxy@.service", "lb-haproxy@x.service.d/transparent.conf").
	Name string
	Data []byte
}

// Files returns every unit file lbctl owns for the given instances, sorted
// by name: the template and one transparent drop-in per transparent VIP.
// It is pure: the same input gives the same bytes.
func Files(instances []Instance) ([]File, error) {
	var errs []error
	files := []File{{Name: TemplateName, Data: []byte(Template())}}
	seen := map[string]bool{}
	for _, in := range instances {
		if err := ValidateInstance(in.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[in.Name] {
			errs = append(errs, fmt.Errorf("instance %s: listed twice", in.Name))
			continue
		}
		seen[in.Name] = true
		if in.Transparent {
			files = append(files, File{
				Name: path.Join(DropInDir(in.Name), TransparentDropInName),
				Data: []byte(TransparentDropIn()),
			})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("unit files: %w", err)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return files, nil
}

// UnitWriter writes lbctl's unit files into Dir (UnitDir on a node; a
// directory seen through /proc/PID/root in tests).
type UnitWriter struct {
	Dir string
}

// Sync makes Dir hold exactly files among the files lbctl owns: each file
// is written atomically (temporary file, fsync, rename) only if its bytes
// differ, and transparent drop-ins of lb-haproxy@ instances that are not in
// files are removed (with their drop-in directory when it becomes empty).
// Other files are never touched. changed reports whether anything was
// written or removed, that is whether systemd needs a daemon-reload.
func (w UnitWriter) Sync(files []File) (changed bool, err error) {
	if w.Dir == "" {
		return false, errors.New("unit writer: empty directory")
	}
	want := map[string]bool{}
	var errs []error
	for _, f := range files {
		if err := checkOwned(f.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		want[f.Name] = true
		c, err := w.write(f)
		changed = changed || c
		if err != nil {
			errs = append(errs, err)
		}
	}
	stale, err := w.ownedDropIns()
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range stale {
		if want[name] {
			continue
		}
		if _, err := w.remove(name); err != nil {
			errs = append(errs, err)
			continue
		}
		changed = true
	}
	return changed, errors.Join(errs...)
}

// WriteTemplate writes the lb-haproxy@ template unit if its bytes differ.
func (w UnitWriter) WriteTemplate() (changed bool, err error) {
	return w.write(File{Name: TemplateName, Data: []byte(Template())})
}

// SyncDropIn makes the transparent drop-in of instance vip present or
// absent: one instance's part of Sync, for an install that updates VIPs
// one by one.
func (w UnitWriter) SyncDropIn(vip string, transparent bool) (changed bool, err error) {
	if err := ValidateInstance(vip); err != nil {
		return false, err
	}
	name := path.Join(DropInDir(vip), TransparentDropInName)
	if transparent {
		return w.write(File{Name: name, Data: []byte(TransparentDropIn())})
	}
	return w.remove(name)
}

// remove removes the drop-in name, and its directory once empty (it is
// left if someone else put a drop-in there).
func (w UnitWriter) remove(name string) (bool, error) {
	p := filepath.Join(w.Dir, filepath.FromSlash(name))
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(filepath.Dir(p))
			return false, nil
		}
		return false, fmt.Errorf("remove %s: %w", p, err)
	}
	_ = os.Remove(filepath.Dir(p))
	return true, nil
}

func (w UnitWriter) write(f File) (bool, error) {
	p := filepath.Join(w.Dir, filepath.FromSlash(f.Name))
	old, err := os.ReadFile(p)
	if err == nil && bytes.Equal(old, f.Data) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	if err := renameio.WriteFile(p, f.Data, 0o644); err != nil {
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	return true, nil
}

// ownedDropIns lists the transparent drop-ins present in Dir.
func (w UnitWriter) ownedDropIns() ([]string, error) {
	entries, err := os.ReadDir(w.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", w.Dir, err)
	}
	var out []string
	for _, e := range entries {
		unit, ok := strings.CutSuffix(e.Name(), ".d")
		if !ok || !e.IsDir() {
			continue
		}
		if _, ok := InstanceOf(unit); !ok {
			continue
		}
		name := path.Join(e.Name(), TransparentDropInName)
		if _, err := os.Lstat(filepath.Join(w.Dir, filepath.FromSlash(name))); err == nil {
			out = append(out, name)
		}
	}
	return out, nil
}

// checkOwned refuses names outside what lbctl owns, so a bad File cannot
// overwrite another package's unit.
func checkOwned(name string) error {
	if name == TemplateName {
		return nil
	}
	dir, file := path.Split(name)
	unit, ok := strings.CutSuffix(strings.TrimSuffix(dir, "/"), ".d")
	if ok && file == TransparentDropInName {
		if _, ok := InstanceOf(unit); ok {
			return nil
		}
	}
	return fmt.Errorf("unit file %q: not a file lbctl owns", name)
}
