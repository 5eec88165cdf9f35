// Package setup assembles the node side from the node configuration: the
// releases store, the real Host (systemd over D-Bus, netlink, nftables,
// BIRD, the agent) and the Installer with its verify, render and validate
// steps. It holds no logic of its own; it is the wiring the CLI and the
// agent share.
package setup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/lbctl/lbctl/bpf"
	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/pack"
	renderbird "github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/sign"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/host"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/target"
	"github.com/lbctl/lbctl/node/validate"
	"github.com/lbctl/lbctl/systemd"
)

// Node is the assembled node side.
type Node struct {
	Config    *config.Config
	Store     *release.Store
	Host      *host.Host
	Installer *install.Installer
	Units     systemd.Manager
	closers   []func() error
}

// Close releases the connections.
func (n *Node) Close() error {
	var errs []error
	for i := len(n.closers) - 1; i >= 0; i-- {
		errs = append(errs, n.closers[i]())
	}
	return errors.Join(errs...)
}

// Open assembles the node side. Nothing on the node changes but the state
// directory, created when missing.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Node, error) {
	store, err := release.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	return open(ctx, cfg, log, store)
}

// OpenReadOnly assembles the node side for a dry run (lbctl plan): it
// creates nothing, not even the state directory, and connects to nothing
// (no systemd, nftables or BIRD: a dry run applies no step). A node with
// nothing installed gets an empty store; a user who may not read the state
// gets an error wrapping release.ErrPermission.
func OpenReadOnly(cfg *config.Config, log *slog.Logger) (*Node, error) {
	store, err := release.OpenExisting(cfg.StateDir)
	if errors.Is(err, release.ErrNoState) {
		store, err = &release.Store{Root: cfg.StateDir}, nil
	}
	if err != nil {
		return nil, err
	}
	n := &Node{Config: cfg, Store: store}
	n.Host = &host.Host{Paths: hostPaths(cfg), Store: store}
	n.Installer = n.installer(log)
	return n, nil
}

func hostPaths(cfg *config.Config) host.Paths {
	return host.Paths{VIPDir: cfg.VIPDir, UnitDir: cfg.UnitDir, BirdConf: cfg.Bird.Config,
		BirdIncludeDir: cfg.Bird.IncludeDir}
}

// installer is the Installer of the node's store and host.
func (n *Node) installer(log *slog.Logger) *install.Installer {
	cfg := n.Config
	return &install.Installer{
		Store:    n.Store,
		Host:     n.Host,
		Open:     Opener(cfg.TrustedDir, time.Now),
		OpenKept: Opener(cfg.TrustedDir, func() time.Time { return time.Time{} }),
		Replay:   ReplayPolicy(cfg),
		Site:     cfg.Site,
		Render:   n.render,
		Validate: (&validate.Validator{CertDir: cfg.CertDir, VIPDir: cfg.VIPDir, BirdIncludeDir: cfg.Bird.IncludeDir}).Validate,
		Log:      log,
		// A unit job mostly waits (systemd forks, HAProxy parses its
		// config and reports ready): twice the cores keeps them busy.
		Parallel: UnitJobs(),
	}
}

func open(ctx context.Context, cfg *config.Config, log *slog.Logger, store *release.Store) (*Node, error) {
	n := &Node{Config: cfg, Store: store}
	units, err := systemd.NewDBus(ctx, systemd.WithLogHint(systemd.JournalHint(10)))
	if err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	n.Units = units
	n.closers = append(n.closers, units.Close)
	fw, err := nft.New()
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("nftables: %w", err)
	}
	ann, err := NewAnnouncer(cfg)
	if err != nil {
		n.Close()
		return nil, err
	}
	n.closers = append(n.closers, ann.Close)
	n.Host = &host.Host{
		Paths:       hostPaths(cfg),
		Units:       units,
		NFT:         fw,
		BirdCtl:     &BirdControl{Socket: cfg.Bird.Socket, Units: units, Unit: cfg.Bird.Unit},
		Announcer:   ann,
		Store:       store,
		Agent:       agent.Client{Socket: cfg.Agent.Socket},
		Health:      HealthDeps(cfg, units),
		Rise:        2,
		GateTimeout: time.Duration(cfg.GateTimeout),
		DrainTime:   time.Duration(cfg.DrainTime),
	}
	// Recovery applies a stored release without rendering one: until a
	// render names the VIP interface, use the one the releases recorded.
	// If it is gone, address operations fail with the reason (and a
	// render may still point them elsewhere).
	if err := n.useInterface(recordedInterface(store)); err != nil {
		n.Host.Addresses = noAddresses{err}
	}
	n.Installer = n.installer(log)
	n.Installer.Committed = agent.Client{Socket: cfg.Agent.Socket}.CommittedIfRunning
	return n, nil
}

// UnitJobs is how many unit jobs an install runs at once: twice the
// usable cores, at least 2.
func UnitJobs() int { return max(2, 2*runtime.GOMAXPROCS(0)) }

// render renders this node's state and points the netlink side at the VIP
// interface its profile names.
func (n *Node) render(site *model.Site, node *model.Node, serial uint64) (*plan.State, error) {
	if err := n.useInterface(node.VIPInterface); err != nil {
		return nil, err
	}
	return target.State(site, node, serial, TargetOptions(n.Config))
}

// useInterface points the netlink side at the VIP interface ifname
// (default netlink.DefaultInterface).
func (n *Node) useInterface(ifname string) error {
	if ifname == "" {
		ifname = netlink.DefaultInterface
	}
	nl, err := netlink.New(netlink.WithInterface(ifname))
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	n.Host.Addresses = host.Netlink{Conn: nl}
	return nil
}

// noAddresses fails every address operation with the reason the VIP
// interface could not be opened.
type noAddresses struct{ err error }

func (a noAddresses) AddVIPs([]netip.Addr) error    { return a.err }
func (a noAddresses) RemoveVIPs([]netip.Addr) error { return a.err }
func (a noAddresses) SetTProxy(bool) error          { return a.err }

// recordedInterface is the VIP interface of the release an interrupted
// install was installing, else of the current release; empty when none
// is recorded.
func recordedInterface(store *release.Store) string {
	var serials []uint64
	if p, err := store.ReadIntent(); err == nil && p != nil {
		serials = append(serials, p.To)
	}
	if cur, ok, err := store.Current(); err == nil && ok {
		serials = append(serials, cur)
	}
	for _, s := range serials {
		if r, err := store.Load(s); err == nil && r.State.Interface != "" {
			return r.State.Interface
		}
	}
	return ""
}

// TargetOptions are the renderer options of the node's paths.
func TargetOptions(cfg *config.Config) target.Options {
	return target.Options{
		HAProxy: haproxy.Options{CertDir: cfg.CertDir, VIPDir: cfg.VIPDir, RuntimeDir: cfg.RuntimeDir, MaxConn: cfg.HAProxy.MaxConn,
			Threads: cfg.HAProxy.Threads, CPUs: runtime.NumCPU()},
		Bird: renderbird.Options{IncludeDir: cfg.Bird.IncludeDir}.FastTimers(),
	}
}

// ReplayPolicy is the node configuration's anti-replay policy.
func ReplayPolicy(cfg *config.Config) install.Replay {
	return install.Replay{MinSerial: cfg.MinSerial, MaxSerialJump: cfg.MaxSerialJump, MaxClockAhead: time.Duration(cfg.MaxClockAhead)}
}

// Opener verifies bundles against the keys in trustedDir, judging expiry at
// now() (a zero time skips the expiry check: rollback to a kept release).
func Opener(trustedDir string, now func() time.Time) func([]byte) (*install.Verified, error) {
	return func(b []byte) (*install.Verified, error) {
		trust, err := sign.LoadTrustDir(trustedDir)
		if err != nil {
			return nil, err
		}
		bundle, err := archive.Read(bytes.NewReader(b), trust, now(), archive.Limits{})
		if err != nil {
			return nil, err
		}
		site, err := pack.Site(bundle)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(bundle.ManifestBytes)
		return &install.Verified{Serial: bundle.Manifest.Serial, Site: site,
			ManifestSHA256: hex.EncodeToString(sum[:]), Created: bundle.Manifest.Created}, nil
	}
}

// NewAnnouncer returns the BIRD announcer of the node's include files.
func NewAnnouncer(cfg *config.Config) (*bird.Announcer, error) {
	return newAnnouncer(cfg, nil)
}

// newAnnouncer is NewAnnouncer telling observe how each change was spent.
func newAnnouncer(cfg *config.Config, observe func(bird.Timing)) (*bird.Announcer, error) {
	return bird.NewAnnouncer(bird.AnnouncerConfig{
		Include4: filepath.Join(cfg.Bird.IncludeDir, renderbird.Include4Name),
		Include6: filepath.Join(cfg.Bird.IncludeDir, renderbird.Include6Name),
		Dial:     bird.SocketDialer(cfg.Bird.Socket),
		Observe:  observe,
	})
}

// HealthDeps are what health evaluations read on the node: unit state,
// listeners through sock_diag and backends through each VIP's admin
// socket. units may be nil.
func HealthDeps(cfg *config.Config, units systemd.Manager) health.Deps {
	d := health.Deps{
		Sockets:  agent.Sockets{Lister: bpf.SockDiag{}, NetNSFD: -1},
		Backends: agent.Stats{Socket: AdminSocket(cfg)},
	}
	if units != nil {
		d.Units = agent.Units{Manager: units}
	}
	return d
}

// AdminSocket gives the HAProxy admin socket of a VIP in the node's
// runtime directory.
func AdminSocket(cfg *config.Config) func(vip string) string {
	return func(vip string) string { return haproxy.AdminSocket(cfg.RuntimeDir, vip) }
}

// BirdControl reconfigures BIRD, starting its unit first when BIRD does not
// answer (a node's first install writes bird.conf before BIRD ever ran).
type BirdControl struct {
	Socket string
	Units  systemd.Manager
	// Unit is BIRD's systemd unit; empty means BIRD is not started here.
	Unit string
}

// Configure implements host.Bird.
func (b *BirdControl) Configure(ctx context.Context) error {
	c, err := bird.Dial(ctx, b.Socket)
	if err != nil && b.Unit != "" && b.Units != nil {
		if serr := b.Units.Start(ctx, b.Unit); serr != nil {
			return errors.Join(err, fmt.Errorf("start %s: %w", b.Unit, serr))
		}
		c, err = dialWait(ctx, b.Socket, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		return nil // BIRD read the new config when it started
	}
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Configure(ctx)
}

func dialWait(ctx context.Context, socket string, timeout time.Duration) (*bird.Client, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := bird.Dial(ctx, socket)
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LoadConfig reads the node configuration.
func LoadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if cfg.Node == "" {
		h, _ := os.Hostname()
		cfg.Node = h
	}
	return cfg, nil
}
