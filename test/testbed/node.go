package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Paths of the product on a systemd LB node (the Debian package's).
const (
	// NodeLBCTL is where Provision puts the lbctl binary on a node.
	NodeLBCTL = "/usr/bin/lbctl"
	// NodeConfigPath is the node configuration file.
	NodeConfigPath = "/etc/lbctl/lbctl.yaml"
	// nodeTrustedDir holds the trusted public keys.
	nodeTrustedDir = "/etc/lbctl/trusted.d"
	// AgentUnitName is the agent's unit.
	AgentUnitName = "lbctl-agent.service"
	// NodeBirdSocket is BIRD's control socket on a node (Debian's bird.service).
	NodeBirdSocket = "/run/bird/bird.ctl"
)

// defaultAgentUnit runs `lbctl agent` on a testbed node when no other unit is
// given (NodeSetup.AgentUnit): a minimal stand-in for the unit the Debian
// package installs.
const defaultAgentUnit = `# lbctl-agent.service, written by the lbctl testbed.
[Unit]
Description=lbctl health agent: keeps BIRD announcing the healthy VIPs
After=network-online.target bird.service

[Service]
Type=notify
ExecStart=` + NodeLBCTL + ` agent --config ` + NodeConfigPath + `
Restart=always
RestartSec=1s
WatchdogSec=30s

[Install]
WantedBy=multi-user.target
`

// NodeConfig is the lbctl.yaml of a testbed node: the defaults (Debian's
// BIRD unit and socket, /etc/lbctl) with the given health gate timeout
// (0: the default 30 s), a short drain time and a faster agent.
//
// HAProxy needs about two file descriptors per connection of its maxconn
// (20000 by default). The node's processes inherit this process's hard
// RLIMIT_NOFILE and, without CAP_SYS_RESOURCE (some VMs and containers),
// cannot raise it; maxconn is then lowered to fit.
func NodeConfig(hostname string, gate time.Duration) string {
	return nodeConfig(hostname, gate, "agent:\n  interval: 500ms\n  fast_interval: 100ms\n")
}

// NodeConfigShippedAgent is NodeConfig with the agent's timing as shipped
// (interval 1 s, fast interval 200 ms): what the scale benchmark measures.
func NodeConfigShippedAgent(hostname string, gate time.Duration) string {
	return nodeConfig(hostname, gate, "")
}

func nodeConfig(hostname string, gate time.Duration, agent string) string {
	if gate <= 0 {
		gate = 30 * time.Second
	}
	extra := ""
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Max < 2*20000+1000 && !hasCap(capSysResource) {
		extra = fmt.Sprintf("# The hard file descriptor limit here is %d and cannot be raised.\nhaproxy:\n  maxconn: %d\n", lim.Max, (lim.Max-1000)/2)
	}
	return fmt.Sprintf(`# lbctl node configuration, written by the lbctl testbed.
node: %s
gate_timeout: %s
drain_time: 1s
%s%s`, hostname, gate, agent, extra)
}

const capSysResource = 24

// hasCap reports whether this process has the capability in its
// effective set.
func hasCap(c uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<c) != 0
		}
	}
	return false
}

// Systemd reports whether the node was launched with systemd as PID 1
// (SystemdNodes) and still runs.
func (n *Node) Systemd() bool { return n.PID != 0 && alive(n.PID, n.PIDStart) }

// NodeCommand returns a command running argv on the LB node: inside every
// namespace of a systemd node (the caller then talks to its systemd over
// D-Bus like any local process), inside the network namespace of a plain
// one.
func (s *Site) NodeCommand(ctx context.Context, node string, argv ...string) (*exec.Cmd, error) {
	n := s.Node(node)
	if n == nil {
		return nil, fmt.Errorf("testbed: no node %q", node)
	}
	if len(argv) == 0 {
		return nil, errors.New("testbed: node command: empty command")
	}
	if n.Systemd() {
		return nsenterAll(ctx, n.PID, argv...), nil
	}
	if n.PID != 0 {
		return nil, fmt.Errorf("testbed: node %s: its systemd (PID %d) is gone", node, n.PID)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.NetNSPath, "--"}, argv...)...), nil
}

// NodeRun runs argv on the node (see NodeCommand) with stdin (may be nil)
// and returns its combined output.
func (s *Site) NodeRun(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error) {
	cmd, err := s.NodeCommand(ctx, node, argv...)
	if err != nil {
		return nil, err
	}
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("testbed: %s on %s: %w: %s", strings.Join(argv, " "), node, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// NodePath is path inside a systemd node as the host sees it, through
// /proc/PID/root (writes there stay in the node's overlays and tmpfs).
func (s *Site) NodePath(node, path string) (string, error) {
	n := s.Node(node)
	if n == nil {
		return "", fmt.Errorf("testbed: no node %q", node)
	}
	if !n.Systemd() {
		return "", fmt.Errorf("testbed: node %s does not run systemd", node)
	}
	return fmt.Sprintf("/proc/%d/root/%s", n.PID, strings.TrimPrefix(path, "/")), nil
}

// writeNodeFile writes data to path inside a systemd node, creating
// directories.
func (s *Site) writeNodeFile(node, path string, data []byte, perm os.FileMode) error {
	p, err := s.NodePath(node, path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("testbed: node %s: %w", node, err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		return fmt.Errorf("testbed: node %s: %w", node, err)
	}
	return nil
}

// NodeSetup is what Provision puts on a node.
type NodeSetup struct {
	// LBCTL is the lbctl binary to copy to NodeLBCTL.
	LBCTL string
	// TrustedKeys are minisign public key files (NAME.pub) to trust.
	TrustedKeys []string
	// Config is the node's lbctl.yaml; default NodeConfig.
	Config string
	// AgentUnit is the text of lbctl-agent.service; default defaultAgentUnit.
	// The demo and the end-to-end tests pass the shipped unit
	// (packaging/systemd/lbctl-agent.service), hardening included.
	AgentUnit string
	// NoAgent leaves the agent's unit stopped.
	NoAgent bool
}

// Provision prepares a systemd node for `lbctl install` like the Debian
// package and an administrator would: the lbctl binary, the node
// configuration, the trusted keys, and the agent's unit, started. The
// test certificates are already in /etc/lbctl/certs. Calling it again
// replaces the binary, configuration and keys and restarts the agent.
func (s *Site) Provision(ctx context.Context, node string, o NodeSetup) error {
	n := s.Node(node)
	if n == nil {
		return fmt.Errorf("testbed: no node %q", node)
	}
	bin, err := os.ReadFile(o.LBCTL)
	if err != nil {
		return fmt.Errorf("testbed: lbctl binary: %w", err)
	}
	cfg := o.Config
	if cfg == "" {
		cfg = NodeConfig(n.Hostname, 0)
	}
	unit := o.AgentUnit
	if unit == "" {
		unit = defaultAgentUnit
	}
	files := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		// A new file, not a rewrite: a running agent keeps its binary.
		{NodeLBCTL + ".new", bin, 0o755},
		{NodeConfigPath, []byte(cfg), 0o644},
		{"/etc/systemd/system/" + AgentUnitName, []byte(unit), 0o644},
	}
	for _, k := range o.TrustedKeys {
		b, err := os.ReadFile(k)
		if err != nil {
			return fmt.Errorf("testbed: trusted key: %w", err)
		}
		files = append(files, struct {
			path string
			data []byte
			perm os.FileMode
		}{nodeTrustedDir + "/" + filepath.Base(k), b, 0o644})
	}
	for _, f := range files {
		if err := s.writeNodeFile(node, f.path, f.data, f.perm); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"mv", "-f", NodeLBCTL + ".new", NodeLBCTL},
		{"systemctl", "daemon-reload"},
	}
	if !o.NoAgent {
		steps = append(steps, []string{"systemctl", "restart", AgentUnitName})
	}
	for _, argv := range steps {
		if _, err := s.NodeRun(ctx, node, nil, argv...); err != nil {
			return err
		}
	}
	return nil
}

// Install runs `lbctl install -` on the node with the bundle on standard
// input and extra arguments, and returns its output.
func (s *Site) Install(ctx context.Context, node string, bundle []byte, args ...string) ([]byte, error) {
	argv := append([]string{NodeLBCTL, "install", "--config", NodeConfigPath}, args...)
	argv = append(argv, "-")
	return s.NodeRun(ctx, node, bytes.NewReader(bundle), argv...)
}

// Lbctl runs lbctl with args on the node and returns its output.
func (s *Site) Lbctl(ctx context.Context, node string, args ...string) ([]byte, error) {
	return s.NodeRun(ctx, node, nil, append([]string{NodeLBCTL}, args...)...)
}

// nodeBirdSocketPath is the host path of a systemd node's BIRD control
// socket, or "" for a plain node.
func (s *Site) nodeBirdSocketPath(node string) string {
	p, err := s.NodePath(node, NodeBirdSocket)
	if err != nil {
		return ""
	}
	return p
}

// WaitECMP waits until the router's route to every prefix has a next hop
// per LB node.
func (s *Site) WaitECMP(ctx context.Context, prefixes []netip.Prefix, timeout time.Duration) error {
	start := time.Now()
	for {
		rs, err := s.Routes(ctx)
		if err != nil {
			return err
		}
		var missing []string
		for _, p := range prefixes {
			i := slices.IndexFunc(rs, func(r Route) bool { return r.Prefix == p })
			if i < 0 {
				missing = append(missing, p.String()+" (no route)")
			} else if len(rs[i].NextHops) < len(s.Nodes) {
				missing = append(missing, rs[i].String())
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("testbed: after %v the router has no route through every LB node for: %s", timeout, strings.Join(missing, "; "))
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}
