// Package config is the node's own configuration, /etc/lbctl/lbctl.yaml: where
// the node keeps its state, which keys it trusts, where BIRD and the agent
// listen. Everything about services comes from bundles, never from here.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/lbctl/lbctl/bundle/archive"
)

// DefaultPath is the node configuration file.
const DefaultPath = "/etc/lbctl/lbctl.yaml"

// Config of a node. The zero value of every field means its default.
type Config struct {
	// Node is this node's host name in the bundles' node profiles; default
	// the machine's host name.
	Node string `yaml:"node"`
	// Site is the site this node belongs to (site.yaml's site): a bundle
	// of another site is refused, even one signed by a trusted key.
	// Default: the site of the first bundle installed here, pinned in
	// <state_dir>/site.json.
	Site string `yaml:"site"`
	// StateDir holds the releases store. Default /var/lib/lbctl.
	StateDir string `yaml:"state_dir"`
	// TrustedDir holds the trusted minisign public keys (*.pub). Default
	// /etc/lbctl/trusted.d.
	TrustedDir string `yaml:"trusted_dir"`
	// CertDir holds <certificate>.pem files. Default /etc/lbctl/certs.
	CertDir string `yaml:"cert_dir"`
	// VIPDir holds one config directory per VIP. Default /etc/lbctl/vips.
	VIPDir string `yaml:"vip_dir"`
	// UnitDir is where unit files and drop-ins go. Default /etc/systemd/system.
	UnitDir string `yaml:"unit_dir"`
	// RuntimeDir holds the VIPs' admin sockets. Default /run/lbctl.
	RuntimeDir string  `yaml:"runtime_dir"`
	Bird       Bird    `yaml:"bird"`
	Agent      Agent   `yaml:"agent"`
	HAProxy    HAProxy `yaml:"haproxy"`
	// GateTimeout bounds the install's health gate. Default 30s.
	GateTimeout Duration `yaml:"gate_timeout"`
	// DrainTime is how long a removed VIP keeps serving after its route is
	// withdrawn. Default 5s.
	DrainTime Duration `yaml:"drain_time"`
	// GracefulShutdown is how long `lbctl drain --all` announces every
	// route with the GRACEFUL_SHUTDOWN community (RFC 8326) before it
	// withdraws them, so that routers move traffic away before the routes
	// go. Default 0: withdraw at once.
	GracefulShutdown Duration `yaml:"graceful_shutdown"`
	// MinSerial is the lowest bundle serial this node installs, even with
	// nothing installed (a fresh or wiped node); 0 pins nothing.
	MinSerial uint64 `yaml:"min_serial"`
	// MaxSerialJump: a serial more than this above both the highest serial
	// installed here and the clock in Unix seconds needs
	// --allow-serial-jump. Default 2592000 (30 days of Unix-second serials).
	MaxSerialJump uint64 `yaml:"max_serial_jump"`
	// MaxClockAhead: a bundle built more than this after the node's clock
	// needs --allow-serial-jump. Default 24h.
	MaxClockAhead Duration `yaml:"max_clock_ahead"`
}

// Bird is where the node's BIRD lives.
type Bird struct {
	// Socket is BIRD's control socket. Default /run/bird/bird.ctl.
	Socket string `yaml:"socket"`
	// Config is bird.conf, written by lbctl. Default /etc/bird/bird.conf.
	Config string `yaml:"config"`
	// IncludeDir holds announce4.conf and announce6.conf. Default
	// /etc/bird/lbctl.
	IncludeDir string `yaml:"include_dir"`
	// Unit is BIRD's systemd unit, started by an install when BIRD does
	// not answer. Default bird.service; "none" never starts it.
	Unit string `yaml:"unit"`
}

// HAProxy tunables of the node's VIP processes.
type HAProxy struct {
	// MaxConn is each VIP's process-wide connection limit; HAProxy needs
	// about twice as many file descriptors and refuses to start when it
	// cannot raise RLIMIT_NOFILE that far. Default 20000 (the renderer's);
	// lower it where lbctl's processes cannot raise the limit (no
	// CAP_SYS_RESOURCE, a low hard limit).
	MaxConn int `yaml:"maxconn"`
	// Threads, when set, is every VIP's HAProxy thread count on this node
	// instead of the one the bundle infers per VIP (docs/intents.md, rule
	// I27). The threads are pinned to the node's cores, spread over them.
	Threads int `yaml:"threads"`
}

// Agent settings.
type Agent struct {
	// Socket is the root-only control socket. Default /run/lbctl/agent.sock.
	Socket string `yaml:"socket"`
	// Metrics is the Prometheus listen address; empty disables. Default
	// 127.0.0.1:9842.
	Metrics string `yaml:"metrics"`
	// StatusAllow lists the networks (CIDR) besides loopback that may read
	// the status page served on the metrics address (/ and /status).
	// Default none: the page answers only on loopback.
	StatusAllow []netip.Prefix `yaml:"status_allow"`
	// KeepRoutesOnShutdown leaves routes announced when the agent stops.
	KeepRoutesOnShutdown bool     `yaml:"keep_routes_on_shutdown"`
	Interval             Duration `yaml:"interval"`
	FastInterval         Duration `yaml:"fast_interval"`
	// ProbeInterval is how often a stable VIP's active probe runs (one of
	// its listeners in turn); its other checks run every Interval
	// (agent.Config.ProbeInterval).
	// Default 5s.
	ProbeInterval Duration `yaml:"probe_interval"`
	Rise          int      `yaml:"rise"`
	Fall          int      `yaml:"fall"`
}

// Duration is a time.Duration written as "5s".
type Duration time.Duration

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Load reads the configuration; a missing file gives the defaults.
func Load(path string) (*Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("node config: %w", err)
	}
	if err == nil {
		err := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField()).Decode(&c)
		// A file of comments only (all defaults) decodes to nothing.
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("node config %s: %s", path, yaml.FormatError(err, false, true))
		}
	}
	if c.Site != "" {
		if err := archive.CheckSite(c.Site); err != nil {
			return nil, fmt.Errorf("node config %s: site: %v", path, err)
		}
	}
	if t := c.HAProxy.Threads; t < 0 || t > MaxThreads {
		return nil, fmt.Errorf("node config %s: haproxy.threads: %d is not between 1 and %d (or 0: the bundle's per-VIP count)", path, t, MaxThreads)
	}
	c.defaults()
	return &c, nil
}

// MaxThreads bounds haproxy.threads (HAProxy 2.6 runs at most 64 threads).
const MaxThreads = 64

func or(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func (c *Config) defaults() {
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	or(&c.StateDir, "/var/lib/lbctl")
	or(&c.TrustedDir, "/etc/lbctl/trusted.d")
	or(&c.CertDir, "/etc/lbctl/certs")
	or(&c.VIPDir, "/etc/lbctl/vips")
	or(&c.UnitDir, "/etc/systemd/system")
	or(&c.RuntimeDir, "/run/lbctl")
	or(&c.Bird.Socket, "/run/bird/bird.ctl")
	or(&c.Bird.Config, "/etc/bird/bird.conf")
	or(&c.Bird.IncludeDir, "/etc/bird/lbctl")
	or(&c.Bird.Unit, "bird.service")
	if c.Bird.Unit == "none" {
		c.Bird.Unit = ""
	}
	or(&c.Agent.Socket, "/run/lbctl/agent.sock")
	if c.Agent.Metrics == "" {
		c.Agent.Metrics = "127.0.0.1:9842"
	}
	if c.GateTimeout == 0 {
		c.GateTimeout = Duration(30 * time.Second)
	}
	if c.DrainTime == 0 {
		c.DrainTime = Duration(5 * time.Second)
	}
	if c.MaxSerialJump == 0 {
		c.MaxSerialJump = 30 * 24 * 3600
	}
	if c.MaxClockAhead == 0 {
		c.MaxClockAhead = Duration(24 * time.Hour)
	}
}
