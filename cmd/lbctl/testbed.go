//go:build linux

package main

import (
	"context"
	"encoding/json"
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
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/test/testbed"
)

func init() {
	dirFlag := &cli.StringFlag{Name: "dir", Value: testbed.DefaultDir, Usage: "testbed state `DIR`"}
	register(&cli.Command{
		Name:   "testbed",
		Usage:  "the sandbox: an anycast site in network namespaces on this machine (root)",
		Hidden: true,
		Subcommands: []*cli.Command{
			{
				Name:      "up",
				Usage:     "bring the sandbox up for an intents tree (or a resolved model with --model)",
				ArgsUsage: "[DIR]",
				Flags: append(resolveFlags(), dirFlag,
					&cli.StringFlag{Name: "model", Usage: "resolved model JSON `FILE` instead of an intents tree"},
					&cli.BoolFlag{Name: "plain", Usage: "LB nodes as plain network namespaces instead of systemd as PID 1 in their own namespaces"}),
				Action: runTestbedUp,
			},
			{
				Name:      "install",
				Usage:     "install a signed bundle on the LB nodes (the first time: the lbctl binary, lbctl.yaml, the trusted key and the agent)",
				ArgsUsage: "BUNDLE",
				Flags: []cli.Flag{dirFlag,
					&cli.StringSliceFlag{Name: "pubkey", Usage: "trust this public key `FILE` on the nodes", Required: true},
					&cli.StringSliceFlag{Name: "node", Usage: "install on this `NODE` only (lb1, lb2; default both)"},
					&cli.BoolFlag{Name: "provision", Usage: "copy the binary, configuration, key and agent unit again"},
					&cli.StringFlag{Name: "agent-unit", Usage: "lbctl-agent.service `FILE` to install on the nodes (default: a minimal one)"},
				},
				Action: runTestbedInstall,
			},
			{
				Name:      "exec",
				Usage:     "run a command on an LB node (inside its systemd's namespaces) or in a namespace of the sandbox",
				ArgsUsage: "NODE|NAMESPACE COMMAND...",
				Flags:     []cli.Flag{dirFlag},
				Action:    runTestbedExec,
			},
			{
				Name:      "routes",
				Usage:     "print the router's VIP routes; with --wait, first wait until each PREFIX goes through every LB node",
				ArgsUsage: "[PREFIX...]",
				Flags: []cli.Flag{dirFlag,
					&cli.DurationFlag{Name: "wait", Usage: "wait up to this long for ECMP routes to every PREFIX"},
				},
				Action: runTestbedRoutes,
			},
			{
				Name:      "kill-haproxy",
				Usage:     "SIGKILL a VIP's HAProxy on a node and time the withdrawal of that node's route at the router",
				ArgsUsage: "NODE VIP",
				Flags: []cli.Flag{dirFlag,
					&cli.BoolFlag{Name: "wait-back", Usage: "then wait until systemd restarted it and the node announces the VIP again"},
					&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "give up after this long"},
				},
				Action: runTestbedKill,
			},
			{
				Name:      "load",
				Usage:     "a bounded request loop from the client namespace; counts answers by LB node and backend, and failures",
				ArgsUsage: "URL",
				Flags: []cli.Flag{dirFlag,
					&cli.StringSliceFlag{Name: "host", Usage: "dial `NAME=ADDRESS` for host NAME (Host and SNI keep the name)"},
					&cli.DurationFlag{Name: "duration", Value: 5 * time.Second, Usage: "stop after this long"},
					&cli.IntFlag{Name: "count", Usage: "stop after this many requests"},
					&cli.DurationFlag{Name: "interval", Value: 20 * time.Millisecond, Usage: "between request starts"},
					&cli.BoolFlag{Name: "retry-refused", Usage: "retry once, 100 ms later, a request whose connection was refused or reset before any answer"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
				},
				Action: runTestbedLoad,
			},
			{
				Name:   "down",
				Usage:  "tear the sandbox down",
				Flags:  []cli.Flag{dirFlag},
				Action: runTestbedDown,
			},
			{
				Name:   "status",
				Usage:  "show namespaces, processes, BGP sessions and the router's VIP routes",
				Flags:  []cli.Flag{dirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: runTestbedStatus,
			},
			{
				Name:            "serve-backend",
				Usage:           "run a backend server (started by `testbed up` inside a backend namespace)",
				Hidden:          true,
				SkipFlagParsing: true,
				Action: func(c *cli.Context) error {
					ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
					defer stop()
					return testbed.BackendMain(ctx, c.Args().Slice())
				},
			},
		},
	})
}

func runTestbedUp(c *cli.Context) error {
	var m *model.Site
	if f := c.String("model"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if m, err = model.Decode(b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	} else {
		site, _, err := resolveTree(c)
		if err != nil {
			return reportErrors(c.App.ErrWriter, err)
		}
		m = site
	}
	// A Ctrl-C during bring-up tears down what was made.
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
	defer stop()
	opts := testbed.Options{Dir: c.String("dir")}
	if !c.Bool("plain") {
		opts.LaunchNode = testbed.SystemdNodes{}.Launch
	}
	s, err := testbed.Up(ctx, m, opts)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "testbed up for site %q: %d LB nodes, %d backends (state in %s)\n", s.Name, len(s.Nodes), len(s.Backends), s.Dir)
	printTopology(w, s)
	return nil
}

func runTestbedDown(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if errors.Is(err, testbed.ErrNotUp) {
		fmt.Fprintln(c.App.Writer, "testbed is not up")
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.Down(context.WithoutCancel(c.Context)); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "testbed down: processes stopped, namespaces and", s.Dir, "removed")
	return nil
}

func runTestbedStatus(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	st, err := s.Status(c.Context)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printTopology(w, s)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPROCESS\tNAMESPACE\tPID\tSTATE")
	for _, p := range st.Procs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", p.Role, p.NetNS, p.PID, aliveWord(p.Alive))
	}
	for _, n := range st.Nodes {
		if n.PID != 0 {
			fmt.Fprintf(tw, "node %s\t%s\t%d\t%s\n", n.Name, n.NetNS, n.PID, aliveWord(n.Alive))
		}
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nBGP AT\tSESSION\tSTATE\tINFO")
	for _, s := range st.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Speaker, s.Name, s.State, s.Info)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nVIP routes at the router:")
	if len(st.Routes) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, r := range st.Routes {
		fmt.Fprintln(w, " ", r)
	}
	for _, e := range st.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	if !st.OK() {
		return cli.Exit("testbed: not healthy", 1)
	}
	return nil
}

func aliveWord(ok bool) string {
	if ok {
		return "running"
	}
	return "GONE"
}

// printTopology prints every namespace with its addresses and how to enter it.
func printTopology(w io.Writer, s *testbed.Site) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tROLE\tADDRESSES")
	fmt.Fprintf(tw, "%s\trouter (BIRD, ECMP)\t%s %s | client side %s %s\n", s.Router, testbed.RouterCore4, testbed.RouterCore6, testbed.RouterClient4, testbed.RouterClient6)
	fmt.Fprintf(tw, "%s\troute reflector (BIRD)\t%s %s\n", s.RR, testbed.RRCore4, testbed.RRCore6)
	for _, n := range s.Nodes {
		fmt.Fprintf(tw, "%s\tLB node %s\t%s %s | backend side %s %s\n", n.NetNS, n.Hostname, n.Core4, n.Core6, n.Backend4, n.Backend6)
	}
	fmt.Fprintf(tw, "%s\tclient\t%s %s\n", s.Client, testbed.Client4, testbed.Client6)
	fmt.Fprintf(tw, "%s\tbackend bridge\t-\n", s.BackendBridge)
	for _, b := range s.Backends {
		fmt.Fprintf(tw, "%s\tbackend %s\t%s ports %s\n", b.NetNS, b.Name, b.Address, portList(b.Ports()))
	}
	tw.Flush()
	if s.Nodes[0].Systemd() {
		fmt.Fprintf(w, "enter an LB node: lbctl testbed exec %s bash   other namespaces: ip netns exec %s bash\n", s.Nodes[0].Name, s.Client)
	} else {
		fmt.Fprintf(w, "enter a namespace: ip netns exec %s bash\n", s.Nodes[0].NetNS)
	}
	fmt.Fprintf(w, "certificates: %s (on a systemd node: /etc/lbctl/certs), CA %s\n", filepath.Join(s.Nodes[0].CertDir, "*.pem"), s.CA)
}

func portList(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}

func runTestbedInstall(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	if c.Args().Len() != 1 {
		return cli.Exit("testbed install: want one argument, the bundle file", 2)
	}
	bundle, err := os.ReadFile(c.Args().First())
	if err != nil {
		return err
	}
	exe, err := os.Executable()
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
	w := c.App.Writer
	for _, name := range nodes {
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
		if _, err := os.Stat(cfg); err != nil || c.Bool("provision") {
			fmt.Fprintf(w, "%s: lbctl binary, %s, trusted key, %s (started)\n", name, testbed.NodeConfigPath, testbed.AgentUnitName)
			setup := testbed.NodeSetup{LBCTL: exe, TrustedKeys: c.StringSlice("pubkey")}
			if f := c.String("agent-unit"); f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				setup.AgentUnit = string(b)
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
	}
	return nil
}

func indentLines(s string) string {
	s = strings.TrimRight(s, "\n")
	return strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

func runTestbedExec(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) < 2 {
		return cli.Exit("testbed exec: want NODE|NAMESPACE COMMAND...", 2)
	}
	target, argv := args[0], args[1:]
	var cmd *exec.Cmd
	if s.Node(target) != nil {
		if cmd, err = s.NodeCommand(c.Context, target, argv...); err != nil {
			return err
		}
	} else {
		ns := target
		if !slices.Contains(s.Namespaces, ns) {
			ns = s.Prefix + target
		}
		if !slices.Contains(s.Namespaces, ns) {
			return cli.Exit(fmt.Sprintf("testbed exec: no node or namespace %q", target), 2)
		}
		cmd = exec.CommandContext(c.Context, "nsenter", append([]string{"--net=" + filepath.Join(testbed.NetNSDir, ns), "--"}, argv...)...)
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

func runTestbedLoad(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	if c.Args().Len() != 1 {
		return cli.Exit("testbed load: want one argument, the URL", 2)
	}
	hosts := map[string]netip.Addr{}
	for _, h := range c.StringSlice("host") {
		name, addr, ok := strings.Cut(h, "=")
		a, err := netip.ParseAddr(addr)
		if !ok || err != nil {
			return cli.Exit(fmt.Sprintf("testbed load: --host %q: want NAME=ADDRESS", h), 2)
		}
		hosts[name] = a
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
	defer stop()
	l := testbed.Traffic{URL: c.Args().First(), Hosts: hosts, Duration: c.Duration("duration"), Count: c.Int("count"),
		Interval: c.Duration("interval"), RetryRefused: c.Bool("retry-refused")}
	res, err := l.Run(ctx, s)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(w, "%d requests in %v: %d ok, %d failed, %d retried after a refused connection\n",
		res.Requests, res.Duration.Round(time.Millisecond), res.OK, res.Failed, res.Retried)
	for i, sec := range res.Seconds {
		fmt.Fprintf(w, "  second %d: %s\n", i+1, countList(sec))
	}
	fmt.Fprintf(w, "served through: %s\n", countList(res.ByNode))
	fmt.Fprintf(w, "answered by:    %s\n", countList(res.ByBackend))
	for _, e := range res.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	if res.Failed > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func runTestbedKill(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	if c.Args().Len() != 2 {
		return cli.Exit("testbed kill-haproxy: want NODE VIP", 2)
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
		d, err := s.WaitBack(c.Context, f, c.Duration("timeout"))
		if err != nil {
			return err
		}
		out, _ := s.NodeRun(c.Context, node, nil, "systemctl", "show", "-p", "MainPID", "--value", f.Unit)
		fmt.Fprintf(w, "%s: systemd restarted %s (PID %s in the node); the agent announced %s again %.1f s later\n",
			node, f.Unit, strings.TrimSpace(string(out)), vip, d.Seconds())
	}
	return nil
}

func runTestbedRoutes(c *cli.Context) error {
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
				return cli.Exit(fmt.Sprintf("testbed routes: %q: want a prefix or an address", a), 2)
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
