package handoff

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// linkPrefix begins the names of pinned links in the pin directory:
// link_uplink_IFNAME, link_tunnel_IFNAME. Maps are pinned under their own
// names (hoff_vips, ...).
const linkPrefix = "link_"

// linkPin is where the link of attachment name ("uplink/IFNAME") is pinned.
func linkPin(dir, name string) string {
	return filepath.Join(dir, linkPrefix+strings.Replace(name, "/", "_", 1))
}

// preparePinDir checks that dir is on a bpf file system, then creates it.
func preparePinDir(dir string) error {
	p := filepath.Clean(dir)
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			if st.Type != unix.BPF_FS_MAGIC {
				return fmt.Errorf("pin flow handoff in %s: %w: %s is not a bpf file system", dir, ErrNotPinnable, p)
			}
			break
		}
		if !errors.Is(err, unix.ENOENT) || p == "/" {
			return fmt.Errorf("pin flow handoff in %s: %w: %w", dir, ErrNotPinnable, err)
		}
		p = filepath.Dir(p)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin flow handoff in %s: %w: %w", dir, ErrNotPinnable, err)
	}
	return nil
}

// loadPinnedObjects loads the programs with their maps pinned by name in
// d.pinDir, adopting the pinned maps of the same layout. When a pinned map
// has another layout it loads maps of its own, unpinned, and sets d.repin.
func (d *Datapath) loadPinnedObjects() error {
	spec, err := loadHandoff()
	if err != nil {
		return classify("load flow handoff programs", err)
	}
	pin := func(p ebpf.PinType) {
		for _, m := range spec.Maps {
			m.Pinning = p
		}
	}
	pin(ebpf.PinByName)
	err = spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.pinDir}})
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		pin(ebpf.PinNone)
		err = spec.LoadAndAssign(&d.objs, nil)
		d.repin = true
	}
	if err != nil {
		return classify("load flow handoff programs", err)
	}
	return nil
}

// adoptLinks takes over the links an earlier process pinned in d.pinDir.
func (d *Datapath) adoptLinks() error {
	ents, err := os.ReadDir(d.pinDir)
	if err != nil {
		return fmt.Errorf("read pinned flow handoff links: %w", err)
	}
	var errs []error
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), linkPrefix)
		kind, ifname, ok2 := strings.Cut(rest, "_")
		if !ok || !ok2 || (kind != "uplink" && kind != "tunnel") {
			continue
		}
		path := filepath.Join(d.pinDir, e.Name())
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("adopt pinned link %s: %w", path, err))
			continue
		}
		name := kind + "/" + ifname
		d.links[name] = l
		d.stale[name] = true
	}
	if err := errors.Join(errs...); err != nil {
		for name, l := range d.links {
			l.Close()
			delete(d.links, name)
		}
		return err
	}
	return nil
}

// linkIfindex is the interface a tcx link is attached to; 0 when the link
// is defunct (its interface was deleted) or cannot be read.
func linkIfindex(l link.Link) int {
	info, err := l.Info()
	if err != nil || info.TCX() == nil {
		return 0
	}
	return int(info.TCX().Ifindex)
}

// dropLink detaches the link of attachment name and deletes its pin.
func (d *Datapath) dropLink(name string) error {
	l := d.links[name]
	delete(d.links, name)
	delete(d.stale, name)
	var errs []error
	// Detach at once: another holder of the link (a bpftool, a pin not
	// yet evicted) must not keep it running.
	_ = l.Detach()
	if d.pinDir != "" {
		if err := l.Unpin(); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unpin %s: %w", name, err))
		}
	}
	if err := l.Close(); err != nil {
		errs = append(errs, fmt.Errorf("detach %s: %w", name, err))
	}
	return errors.Join(errs...)
}

// pinMaps pins this process's maps in d.pinDir in place of the ones
// pinned there.
func (d *Datapath) pinMaps() error {
	var errs []error
	for name, m := range map[string]*ebpf.Map{
		"hoff_vips": d.objs.HoffVips, "hoff_vips6": d.objs.HoffVips6, "hoff_backends": d.objs.HoffBackends,
		"hoff_backends6": d.objs.HoffBackends6, "hoff_cfg": d.objs.HoffCfg, "hoff_stats": d.objs.HoffStats,
	} {
		path := filepath.Join(d.pinDir, name)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unpin the earlier %s: %w", name, err))
			continue
		}
		if err := m.Pin(path); err != nil {
			errs = append(errs, fmt.Errorf("pin %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Pinned reports whether the maps and links are pinned (LoadPinned).
func (d *Datapath) Pinned() bool { return d.pinDir != "" }

// Remove detaches the programs, frees the maps and deletes the pins: what
// an uninstall does. The VXLAN device stays (RemoveDevice).
func (d *Datapath) Remove() error {
	d.mu.Lock()
	for _, l := range d.links {
		// At once, not when the last reference to the link goes.
		_ = l.Detach()
	}
	d.mu.Unlock()
	err := d.Close()
	if d.pinDir == "" {
		return err
	}
	return errors.Join(err, RemovePinned(d.pinDir))
}

// RemovePinned deletes the pinned flow handoff maps and links in dir (on a
// bpf file system): the programs detach once no process holds them. A
// missing dir is no error.
func RemovePinned(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return fmt.Errorf("remove pinned flow handoff: %w", err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("remove pinned flow handoff: %s is not on a bpf file system", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove pinned flow handoff: %w", err)
	}
	return nil
}
