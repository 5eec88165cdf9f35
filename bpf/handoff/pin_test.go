//go:build linux

package handoff

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/lbctl/lbctl/test/netnstest"
)

// loadPinned is LoadPinned that skips the test when the kernel or the
// privileges do not allow it.
func loadPinned(t testing.TB, dir string) *Datapath {
	t.Helper()
	d, err := LoadPinned(dir)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("needs CAP_BPF, CAP_NET_ADMIN and a kernel with BTF and tcx (>= 6.6): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// nodeConfig is node i's configuration in s.
func (s *site) nodeConfig(i int) Config {
	return Config{NetNS: s.nodes[i].Fd(), Uplinks: []string{s.uplinks[i]}, Local: s.addrs[i],
		Peers: s.peers(i), VIPs: []netip.AddrPort{vip, vip6}}
}

// linkProg is the ID of the program the link of attachment name runs.
func linkProg(t testing.TB, d *Datapath, name string) ebpf.ProgramID {
	t.Helper()
	l, ok := d.links[name]
	if !ok {
		t.Fatalf("no link %s (have %v)", name, d.Attached())
	}
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.Program
}

// progID is the ID of a loaded program.
func progID(t testing.TB, p *ebpf.Program) ebpf.ProgramID {
	t.Helper()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("program has no ID")
	}
	return id
}

// askUntil asks on c, again and again, until stop is closed, and sends the
// number of answers from want (or the first failure) on the returned
// channel.
func (s *site) askUntil(c *conn, want int, stop <-chan struct{}) <-chan error {
	errc := make(chan error, 1)
	var n atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				if n.Load() == 0 {
					errc <- errors.New("no request was answered")
				} else {
					errc <- nil
				}
				return
			default:
			}
			node, err := c.ask(fmt.Sprintf("request %d", n.Load()))
			if err == nil && node != s.nodes[want].Name {
				err = fmt.Errorf("answered by %s, want %s", node, s.nodes[want].Name)
			}
			if err != nil {
				errc <- fmt.Errorf("request %d: %w", n.Load(), err)
				return
			}
			n.Add(1)
		}
	}()
	return errc
}

// TestPinnedAcrossRestart stops and starts the loader of both nodes, as an
// agent restart (an upgrade) does, while connections of node 1 go through
// node 2: with the loaders closed the pinned programs keep handing the
// packets off, a new loader adopts the pins (maps with their entries and
// counters, links) and moves the links to its own program without a packet
// lost, and Remove (an uninstall) deletes the pins and detaches.
func TestPinnedAcrossRestart(t *testing.T) {
	dir, inside := netnstest.BPFFS(t)
	if !inside {
		return
	}
	mustLoad(t).Close() // skip early when unsupported
	s := newSite(t, 2)
	pins := []string{filepath.Join(dir, "hn1"), filepath.Join(dir, "hn2")}
	first := []*Datapath{loadPinned(t, pins[0]), loadPinned(t, pins[1])}
	for i, d := range first {
		apply(t, d, s.nodeConfig(i))
	}
	up2 := "uplink/" + s.uplinks[1]
	oldProg := progID(t, first[1].objs.HandoffUplink)
	c, c6 := s.dial(t), s.dialVIP(t, vip6)
	s.mustAsk(t, c, "hello", 0)
	s.mustAsk(t, c6, "hello", 0)

	// The agents stop: their handles close, the pins stay.
	for _, d := range first {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s.routeTo(t, 1)
	s.mustAsk(t, c, "while no process holds the datapath", 0)
	s.mustAsk(t, c6, "while no process holds the datapath", 0)

	// They start again while connection c keeps talking through node 2.
	stop := make(chan struct{})
	errc := s.askUntil(c, 0, stop)
	second := []*Datapath{loadPinned(t, pins[0]), loadPinned(t, pins[1])}
	for _, d := range second {
		t.Cleanup(func() { d.Remove() })
	}
	if got, want := second[1].Attached(), []string{"tunnel/lbh0", up2}; !slices.Equal(got, want) {
		t.Errorf("adopted links %v, want %v", got, want)
	}
	if got := linkProg(t, second[1], up2); got != oldProg {
		t.Errorf("before Apply the adopted link runs program %d, want the earlier %d", got, oldProg)
	}
	if cnt, err := second[1].Counters(); err != nil || cnt.Forwarded == 0 {
		t.Errorf("adopted counters %+v (%v): want the packets forwarded while no process held them", cnt, err)
	}
	for i, d := range second {
		apply(t, d, s.nodeConfig(i))
	}
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("connection through node 2 while its loader restarted: %v", err)
	}
	if got, want := linkProg(t, second[1], up2), progID(t, second[1].objs.HandoffUplink); got != want || got == oldProg {
		t.Errorf("after Apply the link runs program %d, want this loader's %d (the earlier was %d)", got, want, oldProg)
	}
	s.mustAsk(t, c, "after the restart", 0)
	s.mustAsk(t, c6, "after the restart", 0)

	// An uninstall removes the pins: node 2 no longer hands off.
	if err := second[1].Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pins[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin directory after Remove: %v, want it gone", err)
	}
	if _, err := c.ask("after removal"); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after Remove on node 2, got %v, want a reset from node 2 (no handoff)", err)
	}
}

// TestPinnedLayoutChange starts a loader where an earlier version pinned a
// map of another layout: the earlier program keeps running with its maps
// until Apply has filled the new ones and moved the links, then the new
// maps replace the pins.
func TestPinnedLayoutChange(t *testing.T) {
	dir, inside := netnstest.BPFFS(t)
	if !inside {
		return
	}
	mustLoad(t).Close()
	s := newSite(t, 2)
	pins := []string{filepath.Join(dir, "hn1"), filepath.Join(dir, "hn2")}
	for i, p := range pins {
		d := loadPinned(t, p)
		apply(t, d, s.nodeConfig(i))
		if i == 0 {
			t.Cleanup(func() { d.Remove() })
		} else {
			d.Close()
		}
	}
	// The "earlier version" of node 2 pinned a configuration map of
	// another size; its program still holds the real one.
	other, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cfgPin := filepath.Join(pins[1], "hoff_cfg")
	if err := os.Remove(cfgPin); err != nil {
		t.Fatal(err)
	}
	if err := other.Pin(cfgPin); err != nil {
		t.Fatal(err)
	}
	c := s.dial(t)
	s.mustAsk(t, c, "hello", 0)
	s.routeTo(t, 1)
	stop := make(chan struct{})
	errc := s.askUntil(c, 0, stop)
	d := loadPinned(t, pins[1])
	t.Cleanup(func() { d.Remove() })
	if !d.repin {
		t.Fatal("a pinned map of another layout was adopted")
	}
	apply(t, d, s.nodeConfig(1))
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("connection through node 2 while its loader changed the maps: %v", err)
	}
	m, err := ebpf.LoadPinnedMap(cfgPin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var hc handoffHoffConfig
	if err := m.Lookup(uint32(0), &hc); err != nil || hc.Npeers != 1 {
		t.Fatalf("pinned hoff_cfg after Apply: %+v, %v: want this loader's map with one peer", hc, err)
	}
	s.mustAsk(t, c, "after the change", 0)
}

// TestApplySameSetsNoWrites: applying the same configuration again leaves
// the VIP and backend maps alone (no system call per key: the agent
// re-applies every 10 s), so a key removed behind the datapath's back
// stays removed; a changed set syncs the whole map again, which puts it
// back.
func TestApplySameSetsNoWrites(t *testing.T) {
	mustLoad(t).Close() // skip early when unsupported
	s := newSite(t, 2)
	d := mustLoad(t)
	defer d.Close()
	cfg := s.nodeConfig(0)
	apply(t, d, cfg)
	k := key(vip)
	if err := d.objs.HoffVips.Delete(k); err != nil {
		t.Fatal(err)
	}
	has := func() bool {
		var v uint8
		return d.objs.HoffVips.Lookup(k, &v) == nil
	}
	apply(t, d, cfg)
	if has() {
		t.Fatalf("the same configuration applied again wrote %v back into the VIP map", vip)
	}
	cfg.VIPs = append(cfg.VIPs, netip.AddrPortFrom(vip.Addr(), vip.Port()+1))
	apply(t, d, cfg)
	if !has() {
		t.Fatalf("a changed VIP set did not sync the map: %v missing", vip)
	}
}
