//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/host"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/servers"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/systemd"
)

func init() {
	nodeFlag := &cli.StringFlag{Name: "node", Usage: "this node's `HOSTNAME` in the bundle's node profiles (default: the configured one)"}
	installFlags := []cli.Flag{configFlag, nodeFlag,
		&cli.BoolFlag{Name: "allow-downgrade", Usage: "install a bundle older than the current release, the highest serial installed here or min_serial (logged)"},
		&cli.BoolFlag{Name: "allow-serial-jump", Usage: "install a bundle whose serial is more than max_serial_jump ahead of this node and its clock, or built more than max_clock_ahead in the future (logged)"},
		&cli.BoolFlag{Name: "wait", Usage: "wait for another install to finish instead of failing"},
	}
	register(
		&cli.Command{Name: "install", Category: "node", Usage: "verify a bundle and install it on this node, rolling back on any failure",
			ArgsUsage: "BUNDLE|-", Flags: installFlags, Action: runInstall},
		&cli.Command{Name: "plan", Category: "node", Usage: "show what installing a bundle would change on this node (dry run)",
			ArgsUsage: "BUNDLE|-", Flags: append(installFlags, jsonFlag), Action: runPlan},
		&cli.Command{Name: "rollback", Category: "node", Usage: "re-install a kept release (default: the one before the current)",
			ArgsUsage: "[SERIAL]", Flags: []cli.Flag{configFlag, nodeFlag}, Action: runRollback},
		&cli.Command{Name: "releases", Category: "node", Usage: "list the releases kept on this node and the install log",
			Flags: []cli.Flag{configFlag, jsonFlag}, Action: runReleases},
		&cli.Command{Name: "status", Category: "node", Usage: "one screen: release, every VIP with unit, PID, health, announced, drained",
			Flags: []cli.Flag{configFlag, jsonFlag}, Action: runStatus},
		&cli.Command{Name: "drain", Category: "node", Usage: "withdraw a VIP's route (or all) while HAProxy keeps serving existing connections (through the peers' flow handoff), then wait up to drain_time for them to close",
			ArgsUsage: "VIP...|--all", Flags: []cli.Flag{configFlag, &cli.BoolFlag{Name: "all", Usage: "every VIP"},
				&cli.DurationFlag{Name: "wait", Value: -1, Usage: "how long to wait for open connections to close and report them (default: drain_time from lbctl.yaml; 0: do not wait)"}},
			Action: runDrain(true)},
		&cli.Command{Name: "undrain", Category: "node", Usage: "announce drained VIPs again (when healthy)",
			ArgsUsage: "VIP...|--all", Flags: []cli.Flag{configFlag, &cli.BoolFlag{Name: "all", Usage: "every VIP"}}, Action: runDrain(false)},
	)
}

func nodeLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openNode assembles the node side and restores the last committed release
// if an install was interrupted.
func openNode(c *cli.Context) (*setup.Node, error) {
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return nil, err
	}
	if c.IsSet("node") {
		cfg.Node = c.String("node")
	}
	n, err := setup.Open(c.Context, cfg, nodeLogger())
	if err != nil {
		return nil, err
	}
	return n, nil
}

// recoverInterrupted restores the last committed release after an install
// that was killed; the agent calls it at start.
func recoverInterrupted(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	store, err := release.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	if p, err := store.ReadIntent(); err != nil || p == nil {
		return err
	}
	n, err := setup.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer n.Close()
	_, err = n.Installer.Recover(ctx, true)
	return err
}

// nodeStore loads the node configuration, restores the last committed
// release if an install was interrupted, and opens the releases store,
// creating it when missing (for commands that change the node).
func nodeStore(c *cli.Context) (*config.Config, *release.Store, error) {
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return nil, nil, err
	}
	if err := recoverFirst(c, cfg); err != nil {
		return nil, nil, err
	}
	store, err := release.Open(cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	return cfg, store, nil
}

// readStore is nodeStore for read-only commands (status, releases, verify):
// it creates nothing. A node with nothing installed gives a nil store and
// no error; a user who may not read the state gets an exit 1 that says so.
func readStore(c *cli.Context) (*config.Config, *release.Store, error) {
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return nil, nil, err
	}
	store, err := release.OpenExisting(cfg.StateDir)
	if errors.Is(err, release.ErrNoState) {
		return cfg, nil, nil
	}
	if err != nil {
		return nil, nil, stateErr(c, err)
	}
	if err := recoverFirst(c, cfg); err != nil {
		return nil, nil, err
	}
	return cfg, store, nil
}

// stateErr is the exit of a command that could not read the node's state.
func stateErr(c *cli.Context, err error) error {
	return cli.Exit(c.Command.Name+": "+indent(err.Error()), 1)
}

// nothingInstalled says that the node has no state at all.
func nothingInstalled(cfg *config.Config) string {
	return fmt.Sprintf("node %s: nothing installed (no state directory %s)", cfg.Node, cfg.StateDir)
}

// recoverFirst restores the last committed release when an install was
// interrupted, before a command reads or changes the node; it says so. It
// creates nothing: a node without a state directory has nothing to recover.
func recoverFirst(c *cli.Context, cfg *config.Config) error {
	store, err := release.OpenExisting(cfg.StateDir)
	if errors.Is(err, release.ErrNoState) {
		return nil
	}
	if err != nil {
		return stateErr(c, err)
	}
	p, err := store.ReadIntent()
	if err != nil || p == nil {
		return err
	}
	// An install that holds the lock is running, not interrupted.
	unlock, err := store.Lock(false)
	if errors.Is(err, release.ErrLocked) {
		fmt.Fprintf(c.App.ErrWriter, "an %s of release %d is running\n", p.Op, p.To)
		return nil
	}
	if err != nil {
		return err
	}
	unlock()
	fmt.Fprintf(c.App.ErrWriter, "an interrupted %s of release %d was found: restoring release %d first\n", p.Op, p.To, p.From)
	if err := recoverInterrupted(c.Context, cfg, nodeLogger()); err != nil {
		return cli.Exit("restoring the last committed release failed: "+indent(err.Error()), 1)
	}
	return nil
}

func readBundleBytes(c *cli.Context) ([]byte, error) {
	args, err := positional(c)
	if err != nil {
		return nil, err
	}
	if len(args) != 1 {
		return nil, cli.Exit(c.Command.Name+": want exactly one argument, the bundle file or - for standard input", 2)
	}
	if args[0] == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 1<<30))
	}
	return os.ReadFile(args[0])
}

func installOptions(c *cli.Context, n *setup.Node) install.Options {
	return install.Options{Node: n.Config.Node, AllowDowngrade: c.Bool("allow-downgrade"),
		AllowSerialJump: c.Bool("allow-serial-jump"), Wait: c.Bool("wait")}
}

func runInstall(c *cli.Context) error {
	b, err := readBundleBytes(c)
	if err != nil {
		return err
	}
	return changeNode(c, "install", func(ctx context.Context, n *setup.Node) error {
		res, err := n.Installer.Install(ctx, b, installOptions(c, n))
		if err == nil {
			printResult(c.App.Writer, res)
		}
		return err
	})
}

// changeNode runs fn, a change of this node (install, rollback, repair):
// SIGINT and SIGTERM cancel it, and the change then undoes its steps; the
// steps are shown as they run; a failure exits 1 with "<what> failed:".
func changeNode(c *cli.Context, what string, fn func(ctx context.Context, n *setup.Node) error) error {
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n, err := openNode(c)
	if err != nil {
		return err
	}
	defer n.Close()
	n.Installer.Progress = stepPrinter(c)
	err = fn(ctx, n)
	finishProgress(c)
	if err != nil {
		return cli.Exit(what+" failed: "+indent(err.Error()), 1)
	}
	return nil
}

func runPlan(c *cli.Context) error {
	b, err := readBundleBytes(c)
	if err != nil {
		return err
	}
	// A dry run creates nothing: not the state directory, not the lock.
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return err
	}
	if c.IsSet("node") {
		cfg.Node = c.String("node")
	}
	// An interrupted install is reported, not recovered: plan changes
	// nothing.
	n, err := setup.OpenReadOnly(cfg, nodeLogger())
	if err != nil {
		return stateErr(c, err)
	}
	defer n.Close()
	opt := installOptions(c, n)
	opt.DryRun = true
	res, err := n.Installer.Install(c.Context, b, opt)
	if err != nil {
		return cli.Exit("plan: "+indent(err.Error()), 1)
	}
	if c.Bool("json") {
		steps := []string{}
		for _, s := range res.Plan.Steps {
			steps = append(steps, s.Do.String())
		}
		return writeJSON(c.App.Writer, map[string]any{"from": res.From, "to": res.To, "noop": res.NoOp,
			"added": res.Plan.Added, "changed": res.Plan.Changed, "removed": res.Plan.Removed,
			"unchanged": res.Plan.Unchanged, "steps": steps})
	}
	if !res.HasFrom {
		fmt.Fprintf(c.App.Writer, "node %s has no release installed: this is its first install\n", cfg.Node)
	}
	printPlan(c.App.Writer, res)
	return nil
}

func runRollback(c *cli.Context) error {
	var serial uint64
	if c.Args().Len() > 1 {
		return cli.Exit("rollback: at most one argument, the serial", 2)
	}
	if s := c.Args().First(); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cli.Exit("rollback: serial "+strconv.Quote(s)+" is not a number", 2)
		}
		serial = v
	}
	return changeNode(c, "rollback", func(ctx context.Context, n *setup.Node) error {
		res, err := n.Installer.Rollback(ctx, serial, install.Options{Node: n.Config.Node})
		if err == nil {
			printResult(c.App.Writer, res)
		}
		return err
	})
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") }

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// stepPrinter shows install steps on standard error: one updating line on
// a terminal, one plain line per step otherwise.
func stepPrinter(c *cli.Context) func(i, total int, op plan.Op) {
	tty := isTerminal(os.Stderr)
	return func(i, total int, op plan.Op) {
		if tty {
			fmt.Fprintf(c.App.ErrWriter, "\r\033[K[%d/%d] %s", i+1, total, op)
		} else {
			fmt.Fprintf(c.App.ErrWriter, "step %d/%d: %s\n", i+1, total, op)
		}
	}
}

func finishProgress(c *cli.Context) {
	if isTerminal(os.Stderr) {
		fmt.Fprint(c.App.ErrWriter, "\r\033[K")
	}
}

func printResult(w io.Writer, res *install.Result) {
	if res.NoOp {
		fmt.Fprintf(w, "release %d is already installed: nothing to do\n", res.To)
		return
	}
	from := "nothing"
	if res.HasFrom {
		from = fmt.Sprint(res.From)
	}
	fmt.Fprintf(w, "installed release %d (was %s) in %v: %d added, %d changed, %d removed, %d unchanged\n",
		res.To, from, res.Duration.Round(time.Millisecond), len(res.Plan.Added), len(res.Plan.Changed), len(res.Plan.Removed), len(res.Plan.Unchanged))
}

func printPlan(w io.Writer, res *install.Result) {
	if res.NoOp {
		fmt.Fprintf(w, "release %d is already installed: nothing to do\n", res.To)
		return
	}
	p := res.Plan
	fmt.Fprintf(w, "release %d: %d added %v, %d changed %v, %d removed %v, %d unchanged\n", res.To,
		len(p.Added), p.Added, len(p.Changed), p.Changed, len(p.Removed), p.Removed, len(p.Unchanged))
	for i, s := range p.Steps {
		fmt.Fprintf(w, "%3d. %s\n", i+1, s.Do)
	}
}

func runReleases(c *cli.Context) error {
	cfg, store, err := readStore(c)
	if err != nil {
		return err
	}
	if store == nil {
		if c.Bool("json") {
			return writeJSON(c.App.Writer, map[string]any{"current": 0, "releases": []uint64{}, "log": []release.LogEntry{}, "installed": false})
		}
		fmt.Fprintln(c.App.Writer, nothingInstalled(cfg))
		return nil
	}
	high, hasHigh, err := store.ReadHighest()
	if err != nil {
		return err
	}
	serials, err := store.Serials()
	if err != nil {
		return err
	}
	cur, _, err := store.Current()
	if err != nil {
		return err
	}
	hist, err := store.History()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		out := map[string]any{"current": cur, "releases": serials, "log": hist, "installed": true, "min_serial": cfg.MinSerial}
		if hasHigh {
			out["highest"] = high
		}
		return writeJSON(c.App.Writer, out)
	}
	if len(serials) == 0 {
		fmt.Fprintf(c.App.Writer, "node %s: no releases kept in %s\n", cfg.Node, cfg.StateDir)
	}
	for _, s := range serials {
		mark := " "
		if s == cur {
			mark = "*"
		}
		fmt.Fprintf(c.App.Writer, "%s %d\n", mark, s)
	}
	if hasHigh {
		fmt.Fprintf(c.App.Writer, "highest serial installed here: %d (on %s); lower serials need --allow-downgrade\n", high.Serial, high.Time.Format(time.RFC3339))
	}
	if cfg.MinSerial > 0 {
		fmt.Fprintf(c.App.Writer, "min_serial: %d\n", cfg.MinSerial)
	}
	if len(hist) > 0 {
		fmt.Fprintln(c.App.Writer, "\ninstall log (newest last):")
		for _, e := range hist[max(0, len(hist)-10):] {
			line := fmt.Sprintf("  %s %-8s %d -> %d %s (%d ms)", e.Time.Format(time.RFC3339), e.Op, e.From, e.To, e.Result, e.Millis)
			if e.Error != "" {
				line += ": " + strings.SplitN(e.Error, "\n", 2)[0]
			}
			if len(e.Overrides) > 0 {
				line += " [" + strings.Join(e.Overrides, "; ") + "]"
			}
			fmt.Fprintln(c.App.Writer, line)
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// NodeStatus is what `lbctl status --json` prints.
type NodeStatus struct {
	Node string `json:"node"`
	// Installed is false when the node has no state at all.
	Installed bool                 `json:"installed"`
	Serial    uint64               `json:"serial"`
	Pending   *release.Intent      `json:"interrupted_install,omitempty"`
	Agent     string               `json:"agent"`
	Probe     string               `json:"probe,omitempty"`
	Handoff   *agent.HandoffStatus `json:"handoff,omitempty"`
	VIPs      []NodeVIPStatus      `json:"vips"`
	Last      *release.LogEntry    `json:"last_install,omitempty"`
	// Servers an operator took out (lbctl server drain|disable).
	Servers []servers.Entry `json:"servers_out,omitempty"`
}

// NodeVIPStatus is one VIP in the status.
type NodeVIPStatus struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	Unit      string   `json:"unit"`
	MainPID   uint32   `json:"main_pid"`
	Healthy   bool     `json:"healthy"`
	Announced bool     `json:"announced"`
	Drained   bool     `json:"drained"`
	Reasons   []string `json:"reasons,omitempty"`
}

// runStatus works without the network and without the agent: it reads the
// releases store and systemd, and asks the agent when it runs; otherwise it
// evaluates health itself once.
func runStatus(c *cli.Context) error {
	cfg, store, err := readStore(c)
	if err != nil {
		return err
	}
	st := NodeStatus{Node: cfg.Node, VIPs: []NodeVIPStatus{}, Installed: store != nil}
	if store == nil {
		if c.Bool("json") {
			return writeJSON(c.App.Writer, st)
		}
		fmt.Fprintln(c.App.Writer, nothingInstalled(cfg))
		return nil
	}
	st.Pending, _ = store.ReadIntent()
	cur, ok, err := store.Current()
	if err != nil {
		return err
	}
	st.Serial, st.Installed = cur, ok
	if h, _ := store.History(); len(h) > 0 {
		st.Last = &h[len(h)-1]
	}
	var vips []plan.VIP
	if ok {
		r, err := store.Load(cur)
		if err != nil {
			return err
		}
		vips = r.State.VIPs
	}
	drains, _ := store.ReadDrains()
	if f, err := servers.Read(cfg.StateDir); err == nil {
		st.Servers = f.Entries
	}
	var units systemd.Manager
	if m, err := systemd.NewDBus(c.Context); err == nil {
		defer m.Close()
		units = m
	}
	ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
	defer cancel()
	agentView := map[string]agent.VIPStatus{}
	if as, err := (agent.Client{Socket: cfg.Agent.Socket}).Status(ctx); err == nil {
		st.Agent, st.Probe, st.Handoff = "running", as.Probe, as.Handoff
		for _, v := range as.VIPs {
			agentView[v.Name] = v
		}
	} else if errors.Is(err, agent.ErrNotRunning) {
		st.Agent = "not running (health evaluated once by this command; nothing is announced by it)"
	} else {
		st.Agent = "error: " + err.Error()
	}
	deps := setup.HealthDeps(cfg, units)
	for i := range vips {
		v := &vips[i]
		vs := NodeVIPStatus{Name: v.Name, Drained: drains.Drained(v.Name), Unit: "unknown"}
		for _, a := range v.Addresses {
			vs.Addresses = append(vs.Addresses, a.String())
		}
		if units != nil {
			if us, err := units.State(ctx, systemd.UnitName(v.Name)); err == nil {
				vs.Unit, vs.MainPID = us.ActiveState+"/"+us.SubState, us.MainPID
			}
		}
		if av, ok := agentView[v.Name]; ok {
			vs.Healthy, vs.Announced, vs.Reasons = av.Healthy, av.Announced, av.Reasons
		} else {
			r := health.Evaluate(ctx, v, deps, nil)
			vs.Healthy, vs.Reasons = r.OK, r.Reasons
		}
		st.VIPs = append(st.VIPs, vs)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, st)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "node %s, release %d, agent %s\n", st.Node, st.Serial, st.Agent)
	if st.Probe != "" {
		fmt.Fprintf(w, "socket probe: %s\n", st.Probe)
	}
	if h := st.Handoff; h != nil {
		fmt.Fprintf(w, "flow handoff: %s", h.State)
		if len(h.Peers) > 0 {
			fmt.Fprintf(w, ", peers %s", strings.Join(h.Peers, " "))
		}
		fmt.Fprintf(w, "\n  forwarded %d, delivered %d, dropped %d (not ours), refused %d (not VIP traffic), refused by the filter %d (not from a peer), errors %d\n",
			h.Forwarded, h.Delivered, h.Dropped, h.Refused, h.FilterRefused, h.ForwardErrors+h.NoPeer)
	}
	if st.Pending != nil {
		fmt.Fprintf(w, "INTERRUPTED %s of release %d: the next install, rollback or agent start restores release %d\n", st.Pending.Op, st.Pending.To, st.Pending.From)
	}
	if st.Last != nil {
		fmt.Fprintf(w, "last %s: %d -> %d %s at %s\n", st.Last.Op, st.Last.From, st.Last.To, st.Last.Result, st.Last.Time.Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIP\tUNIT\tPID\tHEALTHY\tANNOUNCED\tDRAINED\tADDRESSES")
	for _, v := range st.VIPs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.Name, v.Unit, v.MainPID, yes(v.Healthy), yes(v.Announced), yes(v.Drained), strings.Join(v.Addresses, " "))
	}
	tw.Flush()
	for _, v := range st.VIPs {
		for _, r := range v.Reasons {
			fmt.Fprintf(w, "  %s: %s\n", v.Name, r)
		}
	}
	for _, e := range st.Servers {
		where := "every VIP"
		if e.VIP != "" {
			where = "VIP " + e.VIP
		}
		fmt.Fprintf(w, "server %s: %s in %s since %s (lbctl server enable %s)\n", e.Server, e.State, where, e.Since.Format(time.RFC3339), e.Server)
	}
	return nil
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// runDrain returns the action of drain (on) or undrain.
func runDrain(on bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		cfg, store, err := nodeStore(c)
		if err != nil {
			return err
		}
		names := c.Args().Slice()
		if c.Bool("all") == (len(names) > 0) {
			return cli.Exit(c.Command.Name+": name VIPs or give --all", 2)
		}
		d, err := store.ReadDrains()
		if err != nil {
			return err
		}
		if cur, ok, _ := store.Current(); ok && len(names) > 0 {
			r, err := store.Load(cur)
			if err != nil {
				return err
			}
			for _, n := range names {
				if r.State.VIP(n) == nil {
					return cli.Exit(fmt.Sprintf("%s: no VIP %q in release %d (VIPs: %s)", c.Command.Name, n, cur, strings.Join(r.State.Names(), " ")), 1)
				}
			}
		}
		switch {
		case on && c.Bool("all"):
			d.All = true
		case on:
			d.VIPs = append(d.VIPs, names...)
		case c.Bool("all"):
			d = release.Drains{}
		default:
			d.VIPs = slices.DeleteFunc(d.VIPs, func(v string) bool { return slices.Contains(names, v) })
		}
		if err := store.WriteDrains(d); err != nil {
			return err
		}
		if err := applyAnnouncements(c, cfg, store); err != nil || !on {
			return err
		}
		wait := c.Duration("wait")
		if wait < 0 {
			wait = time.Duration(cfg.DrainTime)
		}
		return waitDrained(c, store, names, wait)
	}
}

// waitDrained waits until the drained VIPs have no open connection or wait
// passes, and says how many are still open. They are not closed: HAProxy
// keeps serving them and, with flow handoff, the peers forward their packets
// here whatever the router does.
func waitDrained(c *cli.Context, store *release.Store, names []string, wait time.Duration) error {
	cur, ok, err := store.Current()
	if err != nil || !ok || wait <= 0 {
		return err
	}
	r, err := store.Load(cur)
	if err != nil {
		return err
	}
	start := time.Now()
	left, err := host.WaitDrained(c.Context, host.DrainLocals(r.State, names), wait)
	if err != nil {
		return err
	}
	if len(left) == 0 {
		fmt.Fprintf(c.App.Writer, "no open connection after %s\n", time.Since(start).Round(time.Millisecond))
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(left)) {
		fmt.Fprintf(c.App.Writer, "%s: %d connections still open after %s; HAProxy keeps serving them (through the peers' flow handoff when the router sends them elsewhere)\n", name, left[name], wait)
	}
	return nil
}

// applyAnnouncements makes the drain state take effect: through the agent
// when it runs, else directly through BIRD.
func applyAnnouncements(c *cli.Context, cfg *config.Config, store *release.Store) error {
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
	defer cancel()
	st, err := (agent.Client{Socket: cfg.Agent.Socket}).Reload(ctx)
	if err == nil {
		fmt.Fprintf(c.App.Writer, "announced now: %s\n", strings.Join(st.Announced, " "))
		return nil
	}
	if !errors.Is(err, agent.ErrNotRunning) {
		return err
	}
	ann, err := setup.NewAnnouncer(cfg)
	if err != nil {
		return err
	}
	defer ann.Close()
	a, err := store.ReadAnnounceable()
	if err != nil {
		return err
	}
	h := &host.Host{Store: store, Announcer: ann}
	if err := h.Announce(ctx, a.VIPs); err != nil {
		return fmt.Errorf("agent not running; announcing through BIRD: %w", err)
	}
	fmt.Fprintln(c.App.Writer, "agent not running: BIRD told directly")
	return nil
}
