// Package host is the real apply.Host of an LB node: it writes VIP configs
// and unit drop-ins, drives systemd over D-Bus, programs addresses, TPROXY
// routing and the nftables table over netlink, writes bird.conf and hands
// the announceable VIPs to the agent (or to BIRD directly when no agent
// runs). Each OS part sits behind a small interface so the composition can
// be tested with fakes; the parts are tested against the real kernel in
// their own packages.
package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/systemd"
)

// Firewall programs the lbctl nftables table in one batch.
type Firewall interface {
	Apply(fw model.Firewall) error
}

// Addresses manages VIP addresses on the VIP interface and the TPROXY
// policy routing. Adding an address that exists and removing one that does
// not both succeed.
type Addresses interface {
	AddVIPs(addrs []netip.Addr) error
	RemoveVIPs(addrs []netip.Addr) error
	SetTProxy(on bool) error
}

// Announcer applies a set of VIP prefixes to BIRD and verifies it.
type Announcer interface {
	Set(ctx context.Context, prefixes []netip.Prefix) error
}

// Bird reconfigures BIRD after bird.conf changed.
type Bird interface {
	Configure(ctx context.Context) error
}

// Paths on the node; the zero value means the defaults.
type Paths struct {
	// VIPDir holds one directory per VIP (systemd.ConfigRoot).
	VIPDir string
	// UnitDir is where unit files and drop-ins go (systemd.UnitDir).
	UnitDir string
	// BirdConf is BIRD's configuration file.
	BirdConf string
	// BirdIncludeDir holds the announcement include files bird.conf reads;
	// they are created empty when missing, since BIRD refuses to start
	// without them.
	BirdIncludeDir string
}

func (p Paths) withDefaults() Paths {
	if p.VIPDir == "" {
		p.VIPDir = systemd.ConfigRoot
	}
	if p.UnitDir == "" {
		p.UnitDir = systemd.UnitDir
	}
	if p.BirdConf == "" {
		p.BirdConf = "/etc/bird/bird.conf"
	}
	if p.BirdIncludeDir == "" {
		p.BirdIncludeDir = "/etc/bird/lbctl"
	}
	return p
}

// Agent is the health agent as the host sees it (health/agent.Client):
// ReloadIfRunning has a running agent re-read the announceable set and
// returns once BIRD shows the result; running is false when no agent runs.
type Agent interface {
	ReloadIfRunning(ctx context.Context) (running bool, err error)
}

// Host implements apply.Host.
type Host struct {
	Paths     Paths
	Units     systemd.Manager
	NFT       Firewall
	Addresses Addresses
	// BirdCtl may be nil when BIRD is not running (nothing to reconfigure).
	BirdCtl Bird
	// Announcer is used when Agent is nil or no agent runs.
	Announcer Announcer
	Store     *release.Store
	Agent     Agent
	// Health is what the health gate evaluates.
	Health health.Deps
	// Rise is how many passing evaluations in a row the gate needs, every
	// GateInterval, within GateTimeout.
	Rise                      int
	GateInterval, GateTimeout time.Duration
	// DrainTime is how long removed VIPs keep serving after their route
	// was withdrawn.
	DrainTime time.Duration

	// gate is the VIPs of the release being installed, for HealthGate;
	// WriteVIP may run for several VIPs at once (apply.RunParallel).
	mu   sync.Mutex
	gate map[string]plan.VIP
}

var _ apply.Host = (*Host)(nil)

func (h *Host) paths() Paths { return h.Paths.withDefaults() }

// WriteVIP writes the VIP's files into its directory (each atomically; files
// lbctl wrote before and the release no longer has are removed) and makes
// the unit drop-ins match.
func (h *Host) WriteVIP(_ context.Context, v *plan.VIP) error {
	if err := systemd.ValidateInstance(v.Name); err != nil {
		return err
	}
	if _, err := h.EnsureTemplate(); err != nil {
		return fmt.Errorf("vip %s: template unit: %w", v.Name, err)
	}
	h.mu.Lock()
	if h.gate == nil {
		h.gate = map[string]plan.VIP{}
	}
	h.gate[v.Name] = *v
	h.mu.Unlock()
	dir := filepath.Join(h.paths().VIPDir, v.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vip %s: %w", v.Name, err)
	}
	keep := map[string]bool{}
	for _, f := range v.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		keep[p] = true
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, f.Data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("vip %s: %w", v.Name, err)
		}
		if err := renameio.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("vip %s: write %s: %w", v.Name, f.Path, err)
		}
	}
	if err := removeOthers(dir, keep); err != nil {
		return fmt.Errorf("vip %s: %w", v.Name, err)
	}
	return h.syncDropIn(v.Name, v.Transparent)
}

func removeOthers(dir string, keep map[string]bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || keep[p] {
			return err
		}
		return os.Remove(p)
	})
}

// syncDropIn makes the VIP's transparent drop-in present or absent
// (systemd.UnitWriter writes every unit file lbctl owns).
func (h *Host) syncDropIn(vip string, transparent bool) error {
	if _, err := (systemd.UnitWriter{Dir: h.paths().UnitDir}).SyncDropIn(vip, transparent); err != nil {
		return fmt.Errorf("vip %s: %w", vip, err)
	}
	return nil
}

// RemoveVIP removes the VIP's directory and drop-in.
func (h *Host) RemoveVIP(_ context.Context, name string) error {
	if err := systemd.ValidateInstance(name); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(h.paths().VIPDir, name)); err != nil {
		return fmt.Errorf("vip %s: %w", name, err)
	}
	return h.syncDropIn(name, false)
}

// EnsureTemplate writes the lb-haproxy@ template unit if it differs.
func (h *Host) EnsureTemplate() (changed bool, err error) {
	return systemd.UnitWriter{Dir: h.paths().UnitDir}.WriteTemplate()
}

func (h *Host) DaemonReload(ctx context.Context) error { return h.Units.DaemonReload(ctx) }

func (h *Host) StartUnit(ctx context.Context, vip string) error {
	return h.Units.Start(ctx, systemd.UnitName(vip))
}

func (h *Host) ReloadUnit(ctx context.Context, vip string) error {
	return h.Units.Reload(ctx, systemd.UnitName(vip))
}

func (h *Host) RestartUnit(ctx context.Context, vip string) error {
	return h.Units.Restart(ctx, systemd.UnitName(vip))
}

// StopUnit stops the unit; a unit systemd does not know is stopped already.
func (h *Host) StopUnit(ctx context.Context, vip string) error {
	err := h.Units.Stop(ctx, systemd.UnitName(vip))
	if errors.Is(err, systemd.ErrUnitNotFound) {
		return nil
	}
	return err
}

func (h *Host) AddAddrs(_ context.Context, addrs []netip.Addr) error {
	return h.Addresses.AddVIPs(addrs)
}

func (h *Host) RemoveAddrs(_ context.Context, addrs []netip.Addr) error {
	return h.Addresses.RemoveVIPs(addrs)
}

func (h *Host) Firewall(_ context.Context, fw model.Firewall) error { return h.NFT.Apply(fw) }

func (h *Host) TProxy(_ context.Context, on bool) error { return h.Addresses.SetTProxy(on) }

// Bird writes bird.conf atomically and reconfigures BIRD if it runs.
//
// An empty conf is what undoing a node's first install asks for (no
// release had a bird.conf before): BIRD refuses an empty configuration, so
// the file and BIRD are left as they are (BIRD runs the new release's
// configuration with nothing announced) rather than failing the undo.
func (h *Host) Bird(ctx context.Context, conf []byte) error {
	if len(conf) == 0 {
		return nil
	}
	p := h.paths().BirdConf
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, conf) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("bird: %w", err)
	}
	for _, n := range []string{"announce4.conf", "announce6.conf"} {
		inc := filepath.Join(h.paths().BirdIncludeDir, n)
		if _, err := os.Stat(inc); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(inc), 0o755); err != nil {
				return fmt.Errorf("bird: %w", err)
			}
			if err := renameio.WriteFile(inc, nil, 0o644); err != nil {
				return fmt.Errorf("bird: %w", err)
			}
		}
	}
	if err := writeKeepOwner(p, conf, 0o644); err != nil {
		return fmt.Errorf("bird: write %s: %w", p, err)
	}
	if h.BirdCtl == nil {
		return nil
	}
	if err := h.BirdCtl.Configure(ctx); err != nil {
		return fmt.Errorf("bird: configure: %w", err)
	}
	return nil
}

// AnnounceTimeout bounds the agent's answer to an Announce.
var AnnounceTimeout = 2 * time.Minute

// Announce records the announceable VIPs and has them announced: by the
// agent, which holds back unhealthy and drained VIPs, or, when no agent
// runs, directly through BIRD, holding back drained VIPs.
func (h *Host) Announce(ctx context.Context, vips []plan.VIP) error {
	hv := make([]health.VIP, len(vips))
	for i := range vips {
		hv[i] = vips[i].Health()
	}
	return h.AnnounceVIPs(ctx, hv)
}

// AnnounceVIPs is Announce of VIPs' health specifications (the announceable
// set as recorded).
func (h *Host) AnnounceVIPs(ctx context.Context, vips []health.VIP) error {
	if err := h.Store.WriteAnnounceable(health.Announceable{VIPs: vips}); err != nil {
		return err
	}
	if h.Agent != nil {
		// The agent answers once BIRD shows the new set, which takes
		// longer than the client's default 10 s with hundreds of VIPs on
		// a busy node (seen at 150 VIPs, load average 50-100).
		actx, cancel := context.WithTimeout(ctx, AnnounceTimeout)
		defer cancel()
		running, err := h.Agent.ReloadIfRunning(actx)
		if err != nil {
			return fmt.Errorf("announce through the agent: %w", err)
		}
		if running {
			return nil
		}
	}
	if h.Announcer == nil {
		return nil
	}
	drains, err := h.Store.ReadDrains()
	if err != nil {
		return err
	}
	if g, ok := h.Announcer.(interface{ SetGracefulShutdown(bool) bool }); ok {
		g.SetGracefulShutdown(drains.GracefulShutdown)
	}
	var prefixes []netip.Prefix
	for _, v := range vips {
		if drains.Drained(v.Name) {
			continue
		}
		for _, a := range v.Addresses {
			prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	slices.SortFunc(prefixes, func(p, q netip.Prefix) int { return p.Addr().Compare(q.Addr()) })
	return h.Announcer.Set(ctx, prefixes)
}

// HealthGate waits until every named VIP is healthy.
func (h *Host) HealthGate(ctx context.Context, names []string) error {
	var vips []*health.VIP
	h.mu.Lock()
	for _, n := range names {
		v, ok := h.gate[n]
		if !ok {
			h.mu.Unlock()
			return fmt.Errorf("health gate: vip %s was not written by this install", n)
		}
		hv := v.Health()
		vips = append(vips, &hv)
	}
	h.mu.Unlock()
	timeout := h.GateTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	interval := h.GateInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	rise := h.Rise
	if rise == 0 {
		rise = 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return health.Gate(ctx, vips, h.Health, rise, interval)
}

// Drain waits until the withdrawn VIPs have no open connection, at most
// DrainTime (or until ctx ends), so their connections can finish; the peers'
// flow handoff keeps them working meanwhile whatever the router does. The
// VIPs are those of the committed release (the one being replaced); when it
// cannot be read, Drain waits DrainTime.
func (h *Host) Drain(ctx context.Context, names []string) error {
	if h.DrainTime <= 0 {
		return nil
	}
	var locals map[string][]netip.AddrPort
	if h.Store != nil {
		if cur, ok, err := h.Store.Current(); err == nil && ok {
			if r, err := h.Store.Load(cur); err == nil {
				locals = DrainLocals(r.State, names)
			}
		}
	}
	if len(locals) > 0 {
		if _, err := WaitDrained(ctx, locals, h.DrainTime); err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
	}
	select {
	case <-time.After(h.DrainTime):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeKeepOwner replaces path atomically, keeping the owner, group and
// mode of the file it replaces (BIRD runs as its own user and reads
// bird.conf, which Debian ships as bird:bird 0640); a new file gets perm.
func writeKeepOwner(path string, data []byte, perm fs.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil {
		return renameio.WriteFile(path, data, perm)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return renameio.WriteFile(path, data, fi.Mode().Perm())
	}
	f, err := renameio.NewPendingFile(path, renameio.WithStaticPermissions(fi.Mode().Perm()))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}
