package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/bundlediff"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/pack"
	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
	"github.com/lbctl/lbctl/internal/pager"
)

// Exit statuses of lbctl diff --exit-code, as git diff --exit-code has
// them: 1 means "something changes", so errors, 1 for every other command
// (and for diff without --exit-code), have their own.
const (
	diffExitChanges = 1
	diffExitUsage   = clix.ExitUsage
	diffExitError   = 3
)

func init() {
	register(diffCommand())
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show what changes from one bundle to another: resolved intents and every rendered file, per node",
		ArgsUsage: "OLD NEW",
		Description: "Prints a summary (services, VIPs, nodes and files added, removed and changed), then the unified diffs: " +
			"the resolved model's, and each rendered file's once for all the nodes it changes the same way on. On a terminal " +
			"the output is coloured (unless NO_COLOR is set) and paged with $LBCTL_PAGER, $PAGER or less (LESS=FRX unless set).\n\n" +
			"Exit status: 0 success (with --exit-code: and nothing changes); 1 a bundle could not be read or verified, or with " +
			"--exit-code: something changes; 2 usage error; 3 with --exit-code: a bundle could not be read or verified.",
		Flags: append(trustFlags(),
			&cli.BoolFlag{Name: "summary", Usage: "print only the summary"},
			&cli.BoolFlag{Name: "stat", Usage: "print the summary and the changed lines per file, no diffs"},
			&cli.BoolFlag{Name: "json", Usage: "print the diff as JSON (docs/operations.md; without diffs with --summary or --stat)"},
			&cli.BoolFlag{Name: "exit-code", Usage: "exit 1 when something changes, 0 when nothing does"},
			&cli.BoolFlag{Name: "no-pager", Usage: "do not page the output on a terminal"},
			&cli.StringFlag{Name: "color", Value: "auto", Usage: "colour the output: `WHEN` auto (on a terminal, unless NO_COLOR is set), always or never"},
			crossSiteFlag,
		),
		Action: runDiff,
	}
}

func runDiff(c *cli.Context) error {
	sites, err := diffSites(c)
	if err != nil {
		return diffError(c, err)
	}
	d, err := bundlediff.Compute(sites[0], sites[1])
	if err != nil {
		return diffError(c, fmt.Errorf("diff: %w", err))
	}
	if err := writeDiff(c, d); err != nil {
		return diffError(c, err)
	}
	if c.Bool("exit-code") && d.Changed() {
		return cli.Exit("", diffExitChanges)
	}
	return nil
}

// diffSites reads and verifies the two bundles' resolved models, which
// must be of the same site unless --cross-site.
func diffSites(c *cli.Context) ([2]*model.Site, error) {
	var sites [2]*model.Site
	args, err := positional(c)
	if err != nil {
		return sites, err
	}
	if len(args) != 2 {
		return sites, clix.Usagef("diff: want two arguments, OLD and NEW bundles")
	}
	for i, f := range args {
		b, err := openBundle(c, f)
		if err != nil {
			return sites, err
		}
		if sites[i], err = pack.Site(b); err != nil {
			return sites, fmt.Errorf("diff: %s: %w", f, err)
		}
	}
	return sites, checkSameSite(c, args[0], sites[0], sites[1])
}

// diffError gives every error but a usage error the exit status 3 with
// --exit-code, where 1 means "something changes".
func diffError(c *cli.Context, err error) error {
	var ec cli.ExitCoder
	if !c.Bool("exit-code") || errors.As(err, &ec) && ec.ExitCode() == diffExitUsage {
		return err
	}
	return cli.Exit(err.Error(), diffExitError)
}

// writeDiff prints the diff as the flags ask, through the pager on a
// terminal.
func writeDiff(c *cli.Context, d *bundlediff.Diff) error {
	brief := c.Bool("summary") || c.Bool("stat")
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(d.Report(!brief))
	}
	tty := writerIsTerminal(c.App.Writer)
	color, err := diffColor(c.String("color"), tty)
	if err != nil {
		return err
	}
	w, done := diffOutput(c, tty && !c.Bool("no-pager") && !c.Bool("summary"))
	t := bundlediff.Text{Color: color}
	t.Summary(w, d)
	switch {
	case c.Bool("stat"):
		io.WriteString(w, "\n")
		t.Stat(w, d)
	case !brief && d.Changed():
		io.WriteString(w, "\n")
		t.Unified(w, d)
	}
	return done()
}

// diffColor decides on colour: --color always or never, or auto: on a
// terminal unless NO_COLOR is set (https://no-color.org) or TERM is dumb.
func diffColor(when string, tty bool) (bool, error) {
	switch when {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		return tty && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb", nil
	}
	return false, clix.Usagef("diff: --color %q: want auto, always or never", when)
}

// diffOutput is the pager when paging is wanted and one starts, else the
// command's writer; done waits for the pager.
func diffOutput(c *cli.Context, page bool) (io.Writer, func() error) {
	none := func() error { return nil }
	cmdline := pager.Command(os.LookupEnv)
	if !page || cmdline == "" {
		return c.App.Writer, none
	}
	p, err := pager.Start(cmdline, c.App.Writer, c.App.ErrWriter, os.Environ())
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "lbctl: %v; printing without it\n", err)
		return c.App.Writer, none
	}
	return p, p.Close
}

// writerIsTerminal reports whether w is a terminal.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && pager.IsTerminal(f)
}
