package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/plan"
)

// ErrInjected is the failure a Fake returns at its FailAt call.
var ErrInjected = errors.New("injected failure")

// Fake is an in-memory Host. It keeps the node's state, rejects impossible
// transitions (starting a unit without config, reloading a stopped one,
// removing an address that is not there) and prints its state as text.
type Fake struct {
	Files      map[string]string // vip -> rendered files, concatenated
	DropIns    map[string]bool   // vip -> transparent drop-in present
	Units      map[string]uint32 // vip -> main PID of a running unit
	Addrs      map[netip.Addr]bool
	FW         model.Firewall
	TProxyOn   bool
	BirdConf   string
	Announced  []netip.Addr
	Unhealthy  map[string]bool // VIPs the health gate reports unhealthy
	nextPID    uint32
	dirty      bool // unit files changed since the last daemon-reload
	Calls      int  // mutating calls so far
	FailAt     int  // fail the FailAt-th mutating call (1-based); 0 never
	CallLog    []string
	DrainCalls int

	mu sync.Mutex // Host calls may come concurrently (apply.RunParallel)
}

// NewFake returns an empty node.
func NewFake() *Fake {
	return &Fake{Files: map[string]string{}, DropIns: map[string]bool{}, Units: map[string]uint32{},
		Addrs: map[netip.Addr]bool{}, Unhealthy: map[string]bool{}, nextPID: 1000}
}

func (f *Fake) call(what string) error {
	f.Calls++
	f.CallLog = append(f.CallLog, what)
	if f.Calls == f.FailAt {
		return fmt.Errorf("%s: %w", what, ErrInjected)
	}
	return nil
}

func files(v *plan.VIP) string {
	var b strings.Builder
	for _, fl := range v.Files {
		fmt.Fprintf(&b, "%s=%q;", fl.Path, fl.Data)
	}
	return b.String()
}

func (f *Fake) WriteVIP(_ context.Context, v *plan.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("write " + v.Name); err != nil {
		return err
	}
	if f.DropIns[v.Name] != v.Transparent {
		f.dirty = true
	}
	f.Files[v.Name] = files(v)
	f.DropIns[v.Name] = v.Transparent
	return nil
}

func (f *Fake) RemoveVIP(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("remove " + name); err != nil {
		return err
	}
	if _, ok := f.Units[name]; ok {
		return fmt.Errorf("remove config of running %s", name)
	}
	if f.DropIns[name] {
		f.dirty = true
	}
	delete(f.Files, name)
	delete(f.DropIns, name)
	return nil
}

func (f *Fake) DaemonReload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("daemon-reload"); err != nil {
		return err
	}
	f.dirty = false
	return nil
}

func (f *Fake) StartUnit(_ context.Context, vip string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("start " + vip); err != nil {
		return err
	}
	if _, ok := f.Files[vip]; !ok {
		return fmt.Errorf("start %s: no config", vip)
	}
	if f.dirty {
		return fmt.Errorf("start %s: unit files changed without daemon-reload", vip)
	}
	if _, ok := f.Units[vip]; !ok {
		f.nextPID++
		f.Units[vip] = f.nextPID
	}
	return nil
}

func (f *Fake) ReloadUnit(_ context.Context, vip string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("reload " + vip); err != nil {
		return err
	}
	if _, ok := f.Units[vip]; !ok {
		return fmt.Errorf("reload %s: unit not active", vip)
	}
	return nil
}

func (f *Fake) RestartUnit(_ context.Context, vip string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("restart " + vip); err != nil {
		return err
	}
	if _, ok := f.Files[vip]; !ok {
		return fmt.Errorf("restart %s: no config", vip)
	}
	if f.dirty {
		return fmt.Errorf("restart %s: unit files changed without daemon-reload", vip)
	}
	f.nextPID++
	f.Units[vip] = f.nextPID
	return nil
}

func (f *Fake) StopUnit(_ context.Context, vip string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("stop " + vip); err != nil {
		return err
	}
	delete(f.Units, vip)
	return nil
}

func (f *Fake) AddAddrs(_ context.Context, addrs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("add-addrs"); err != nil {
		return err
	}
	for _, a := range addrs {
		f.Addrs[a] = true
	}
	return nil
}

func (f *Fake) RemoveAddrs(_ context.Context, addrs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("remove-addrs"); err != nil {
		return err
	}
	for _, a := range addrs {
		delete(f.Addrs, a)
	}
	return nil
}

func (f *Fake) Firewall(_ context.Context, fw model.Firewall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("firewall"); err != nil {
		return err
	}
	f.FW = fw.Canonical()
	return nil
}

func (f *Fake) TProxy(_ context.Context, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("tproxy"); err != nil {
		return err
	}
	f.TProxyOn = on
	return nil
}

func (f *Fake) Bird(_ context.Context, conf []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("bird"); err != nil {
		return err
	}
	f.BirdConf = string(conf)
	return nil
}

func (f *Fake) Announce(_ context.Context, vips []plan.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("announce"); err != nil {
		return err
	}
	var addrs []netip.Addr
	for _, v := range vips {
		addrs = append(addrs, v.Addresses...)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		if !f.Addrs[a] {
			return fmt.Errorf("announce %s: address not on the node", a)
		}
	}
	f.Announced = slices.Clone(addrs)
	return nil
}

func (f *Fake) HealthGate(_ context.Context, vips []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("health-gate"); err != nil {
		return err
	}
	var errs []error
	for _, v := range vips {
		if _, ok := f.Units[v]; !ok || f.Unhealthy[v] {
			errs = append(errs, fmt.Errorf("vip %s: not healthy", v))
		}
	}
	return errors.Join(errs...)
}

func (f *Fake) Drain(context.Context, []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.DrainCalls++
	return f.call("drain")
}

// String prints the state; with pids false the main PIDs are left out.
func (f *Fake) String() string { return f.state(true) }

// StateWithoutPIDs prints the state without main PIDs.
func (f *Fake) StateWithoutPIDs() string { return f.state(false) }

func (f *Fake) state(pids bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(f.Files)) {
		fmt.Fprintf(&b, "config %s transparent=%v %s\n", k, f.DropIns[k], f.Files[k])
	}
	for _, k := range slices.Sorted(maps.Keys(f.Units)) {
		if pids {
			fmt.Fprintf(&b, "unit %s pid=%d\n", k, f.Units[k])
		} else {
			fmt.Fprintf(&b, "unit %s\n", k)
		}
	}
	addrs := make([]netip.Addr, 0, len(f.Addrs))
	for a := range f.Addrs {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	fmt.Fprintf(&b, "addrs %v\nfirewall %+v\ntproxy %v\nbird %q\nannounced %v\n", addrs, f.FW, f.TProxyOn, f.BirdConf, f.Announced)
	return b.String()
}
