//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/test/testbed"
)

func installCommand() *cli.Command {
	return &cli.Command{
		Name:      "install",
		Usage:     "install a signed bundle on the LB nodes (the first time: the lbctl binary, lbctl.yaml, the trusted key and the agent)",
		ArgsUsage: "BUNDLE",
		Flags: []cli.Flag{dirFlag,
			&cli.StringSliceFlag{Name: "pubkey", Usage: "trust this public key `FILE` on the nodes", Required: true},
			&cli.StringSliceFlag{Name: "node", Usage: "install on this `NODE` only (lb1, lb2; default both)"},
			&cli.BoolFlag{Name: "provision", Usage: "copy the binary, configuration, key and agent unit again"},
			&cli.StringFlag{Name: "agent-unit", Usage: "lbctl-agent.service `FILE` to install on the nodes (default: a minimal one)"},
			&cli.StringFlag{Name: "lbctl", Usage: "the lbctl binary `FILE` to put on the nodes (default: the lbctl beside this program)"},
		},
		Action: runInstall,
	}
}

// lbctlBinary returns the lbctl binary to provision the nodes with: --lbctl,
// or the lbctl in this program's directory (bin/lbctl beside
// bin/lbctl-testbed).
func lbctlBinary(c *cli.Context) (string, error) {
	if f := c.String("lbctl"); f != "" {
		return filepath.Abs(f)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f := filepath.Join(filepath.Dir(exe), "lbctl")
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("no lbctl beside %s (build it with `make build` or name it with --lbctl): %w", exe, err)
	}
	return f, nil
}

// nodeSetup is what provisioning puts on a node.
func nodeSetup(c *cli.Context) (testbed.NodeSetup, error) {
	exe, err := lbctlBinary(c)
	if err != nil {
		return testbed.NodeSetup{}, err
	}
	setup := testbed.NodeSetup{LBCTL: exe, TrustedKeys: c.StringSlice("pubkey")}
	if f := c.String("agent-unit"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return setup, err
		}
		setup.AgentUnit = string(b)
	}
	return setup, nil
}

func runInstall(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	if c.Args().Len() != 1 {
		return cli.Exit("install: want one argument, the bundle file", 2)
	}
	bundle, err := os.ReadFile(c.Args().First())
	if err != nil {
		return err
	}
	nodes := c.StringSlice("node")
	if len(nodes) == 0 {
		for _, n := range s.Nodes {
			nodes = append(nodes, n.Name)
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
	defer stop()
	for _, name := range nodes {
		if err := installNode(ctx, c, s, name, bundle); err != nil {
			return err
		}
	}
	return nil
}

// installNode provisions node when it has no lbctl.yaml yet (or with
// --provision) and installs the bundle on it.
func installNode(ctx context.Context, c *cli.Context, s *testbed.Site, name string, bundle []byte) error {
	n := s.Node(name)
	if n == nil {
		return fmt.Errorf("testbed: no node %q", name)
	}
	if !n.Systemd() {
		return fmt.Errorf("testbed: node %s does not run systemd (sandbox brought up with --plain?)", name)
	}
	cfg, err := s.NodePath(name, testbed.NodeConfigPath)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if _, err := os.Stat(cfg); err != nil || c.Bool("provision") {
		fmt.Fprintf(w, "%s: lbctl binary, %s, trusted key, %s (started)\n", name, testbed.NodeConfigPath, testbed.AgentUnitName)
		setup, err := nodeSetup(c)
		if err != nil {
			return err
		}
		if err := s.Provision(ctx, name, setup); err != nil {
			return err
		}
	}
	out, err := s.Install(ctx, name, bundle)
	fmt.Fprintf(w, "%s: %s", name, indentLines(string(out)))
	if err != nil {
		return fmt.Errorf("testbed: install on %s failed", name)
	}
	return nil
}

func indentLines(s string) string {
	s = strings.TrimRight(s, "\n")
	return strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

func runExec(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) < 2 {
		return cli.Exit("exec: want NODE|NAMESPACE COMMAND...", 2)
	}
	cmd, err := execCommand(c.Context, s, args[0], args[1:])
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.App.Writer, c.App.ErrWriter
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return cli.Exit("", ee.ExitCode())
		}
		return err
	}
	return nil
}

// execCommand is argv on LB node target (in its systemd's namespaces) or in
// the sandbox's namespace target (with or without the sandbox's prefix).
func execCommand(ctx context.Context, s *testbed.Site, target string, argv []string) (*exec.Cmd, error) {
	if s.Node(target) != nil {
		return s.NodeCommand(ctx, target, argv...)
	}
	ns := target
	if !slices.Contains(s.Namespaces, ns) {
		ns = s.Prefix + target
	}
	if !slices.Contains(s.Namespaces, ns) {
		return nil, cli.Exit(fmt.Sprintf("exec: no node or namespace %q", target), 2)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + filepath.Join(testbed.NetNSDir, ns), "--"}, argv...)...), nil
}

func runKill(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	if c.Args().Len() != 2 {
		return cli.Exit("kill-haproxy: want NODE VIP", 2)
	}
	node, vip := c.Args().Get(0), c.Args().Get(1)
	w := c.App.Writer
	f, err := s.KillHAProxy(c.Context, node, vip, c.Duration("timeout"))
	if f != nil && f.HostPID != 0 {
		fmt.Fprintf(w, "%s: SIGKILL to the main PID of %s (PID %d in the node, %d on the host)\n", node, f.Unit, f.MainPID, f.HostPID)
	}
	if err != nil {
		return err
	}
	after := f.After
	if after == "" {
		after = "no route"
	}
	fmt.Fprintf(w, "router: next hop %s (%s) gone from the route to %s %.1f ms after the kill; now %s\n",
		f.Via, node, f.Prefix, float64(f.Withdrawn.Microseconds())/1000, after)
	if c.Bool("wait-back") {
		return waitBack(c.Context, w, s, f, node, vip, c.Duration("timeout"))
	}
	return nil
}

// waitBack waits until systemd restarted the killed HAProxy and the node
// announces vip again.
func waitBack(ctx context.Context, w io.Writer, s *testbed.Site, f *testbed.Failover, node, vip string, timeout time.Duration) error {
	d, err := s.WaitBack(ctx, f, timeout)
	if err != nil {
		return err
	}
	out, _ := s.NodeRun(ctx, node, nil, "systemctl", "show", "-p", "MainPID", "--value", f.Unit)
	fmt.Fprintf(w, "%s: systemd restarted %s (PID %s in the node); the agent announced %s again %.1f s later\n",
		node, f.Unit, strings.TrimSpace(string(out)), vip, d.Seconds())
	return nil
}

func runRoutes(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	var prefixes []netip.Prefix
	for _, a := range c.Args().Slice() {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			addr, aerr := netip.ParseAddr(a)
			if aerr != nil {
				return cli.Exit(fmt.Sprintf("routes: %q: want a prefix or an address", a), 2)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		prefixes = append(prefixes, p)
	}
	if d := c.Duration("wait"); d > 0 {
		if err := s.WaitECMP(c.Context, prefixes, d); err != nil {
			return err
		}
	}
	rs, err := s.Routes(c.Context)
	if err != nil {
		return err
	}
	for _, r := range rs {
		fmt.Fprintln(c.App.Writer, r)
	}
	return nil
}
