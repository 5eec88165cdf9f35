//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
)

func init() {
	register(installCommand(), planCommand(), rollbackCommand())
}

var nodeFlag = &cli.StringFlag{Name: "node", Usage: "this node's `HOSTNAME` in the bundle's node profiles (default: the configured one)"}

// installFlags are the flags of the commands that install a bundle.
func installFlags() []cli.Flag {
	return []cli.Flag{configFlag, nodeFlag,
		&cli.BoolFlag{Name: "allow-downgrade", Usage: "install a bundle older than the current release, the highest serial installed here or min_serial (logged)"},
		&cli.BoolFlag{Name: "allow-serial-jump", Usage: "install a bundle whose serial is more than max_serial_jump ahead of this node and its clock, or built more than max_clock_ahead in the future (logged)"},
		&cli.BoolFlag{Name: "wait", Usage: "wait for another install to finish instead of failing"},
	}
}

func installCommand() *cli.Command {
	return &cli.Command{Name: "install", Category: "node", Usage: "verify a bundle and install it on this node, rolling back on any failure",
		Description: "Verifies the bundle (signature, expiry, serial), renders and validates this node's files, then applies\n" +
			"them step by step with an undo for each, behind a health gate; any failure restores the previous release.",
		ArgsUsage: "BUNDLE|-", Flags: installFlags(), Action: runInstall}
}

func planCommand() *cli.Command {
	return &cli.Command{Name: "plan", Category: "node", Usage: "show what installing a bundle would change on this node (dry run)",
		ArgsUsage: "BUNDLE|-", Flags: append(installFlags(), jsonFlag), Action: runPlan}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{Name: "rollback", Category: "node", Usage: "re-install a kept release (default: the one before the current)",
		ArgsUsage: "[SERIAL]", Flags: []cli.Flag{configFlag, nodeFlag}, Action: runRollback}
}

func nodeLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// loadConfig reads the node configuration, with --node when the command
// has it and it is set.
func loadConfig(c *cli.Context) (*config.Config, error) {
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return nil, err
	}
	if c.IsSet("node") {
		cfg.Node = c.String("node")
	}
	return cfg, nil
}

// openNode assembles the node side.
func openNode(c *cli.Context) (*setup.Node, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	return setup.Open(c.Context, cfg, nodeLogger())
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
	store, err := ops.ReadStore(cfg)
	if err != nil {
		return nil, nil, stateErr(c, err)
	}
	if store == nil {
		return cfg, nil, nil
	}
	if err := recoverIn(c, cfg, store); err != nil {
		return nil, nil, err
	}
	return cfg, store, nil
}

// stateErr is the exit of a command that could not read the node's state.
func stateErr(c *cli.Context, err error) error {
	return cli.Exit(c.Command.Name+": "+indent(err.Error()), 1)
}

// recoverFirst restores the last committed release when an install was
// interrupted, before a command reads or changes the node; it says so. It
// creates nothing: a node without a state directory has nothing to recover.
func recoverFirst(c *cli.Context, cfg *config.Config) error {
	store, err := ops.ReadStore(cfg)
	if err != nil {
		return stateErr(c, err)
	}
	return recoverIn(c, cfg, store)
}

// recoverIn is recoverFirst with the store opened (nil: no state).
func recoverIn(c *cli.Context, cfg *config.Config, store *release.Store) error {
	if store == nil {
		return nil
	}
	p, err := ops.FindInterrupted(store)
	switch {
	case err != nil || p == nil:
		return err
	case p.Running:
		fmt.Fprintf(c.App.ErrWriter, "an %s of release %d is running\n", p.Op, p.To)
		return nil
	}
	fmt.Fprintf(c.App.ErrWriter, "an interrupted %s of release %d was found: restoring release %d first\n", p.Op, p.To, p.From)
	if err := ops.Recover(c.Context, cfg, nodeLogger()); err != nil {
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
	cfg, err := loadConfig(c)
	if err != nil {
		return err
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
		return writeJSON(c.App.Writer, planJSON(res))
	}
	if !res.HasFrom {
		fmt.Fprintf(c.App.Writer, "node %s has no release installed: this is its first install\n", cfg.Node)
	}
	printPlan(c.App.Writer, res)
	return nil
}

// planJSON is what `lbctl plan --json` prints.
func planJSON(res *install.Result) map[string]any {
	steps := []string{}
	for _, s := range res.Plan.Steps {
		steps = append(steps, s.Do.String())
	}
	return map[string]any{"from": res.From, "to": res.To, "noop": res.NoOp,
		"added": res.Plan.Added, "changed": res.Plan.Changed, "removed": res.Plan.Removed,
		"unchanged": res.Plan.Unchanged, "steps": steps}
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
	if len(res.Phases) > 0 {
		took := make([]string, len(res.Phases))
		for i, p := range res.Phases {
			took[i] = p.Name + " " + p.Took.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "  took: %s\n", strings.Join(took, ", "))
	}
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
