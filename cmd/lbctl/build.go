package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/bundlediff"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/pack"
	"github.com/lbctl/lbctl/bundle/sign"
)

func init() {
	register(
		&cli.Command{
			Name:      "build",
			Usage:     "resolve an intents tree into a signed bundle",
			ArgsUsage: "DIR",
			Flags: append(resolveFlags(),
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the bundle to `FILE`"},
				&cli.StringFlag{Name: "key", Usage: "sign with the secret key `FILE` (NAME.key)"},
				&cli.Uint64Flag{Name: "serial", Usage: "bundle serial (default: the build time in Unix seconds, which only grows)"},
				&cli.DurationFlag{Name: "expires", Usage: "nodes refuse the bundle after this `DURATION` (default: never)"},
				&cli.StringFlag{Name: "time", Usage: "creation time (RFC 3339 or Unix seconds; default $SOURCE_DATE_EPOCH or now): the same tree, serial and time give the same bytes"},
				&cli.StringFlag{Name: "against", Usage: "print what changes against the previous bundle `FILE` (verified with --pubkey/--trusted)"},
				&cli.StringFlag{Name: "pubkey", Usage: "trust this public key `FILE` for --against"},
				&cli.StringFlag{Name: "trusted", Value: sign.DefaultTrustDir, Usage: "trust the public keys in `DIR` for --against"},
			),
			Action: runBuild,
		},
		&cli.Command{
			Name:      "diff",
			Usage:     "show what changes from one bundle to another: resolved intents and every rendered file, per node",
			ArgsUsage: "OLD NEW",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "pubkey", Usage: "trust this public key `FILE`"},
				&cli.StringFlag{Name: "trusted", Value: sign.DefaultTrustDir, Usage: "trust the public keys in `DIR`"},
				&cli.BoolFlag{Name: "summary", Usage: "print only the summary"},
			},
			Action: runDiff,
		},
	)
}

func buildTime(c *cli.Context) (time.Time, error) {
	s := c.String("time")
	if s == "" {
		s = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if s == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, cli.Exit(fmt.Sprintf("build: --time %q: want RFC 3339 or Unix seconds", s), 2)
	}
	return t.UTC().Truncate(time.Second), nil
}

// gitRevision returns the commit of dir's git checkout ("+dirty" when the
// tree has changes), or "" when dir is not in git.
func gitRevision(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--", ".").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += "+dirty"
	}
	return rev
}

func runBuild(c *cli.Context) error {
	site, dir, err := resolveOrReport(c)
	if err != nil {
		return err
	}
	if c.String("output") == "" || c.String("key") == "" {
		return cli.Exit("build: --output FILE and --key NAME.key are required", 2)
	}
	created, err := buildTime(c)
	if err != nil {
		return err
	}
	serial := c.Uint64("serial")
	if serial == 0 {
		serial = uint64(created.Unix())
	}
	var prev *archive.Bundle
	if p := c.String("against"); p != "" {
		if prev, err = openBundle(c, p); err != nil {
			return err
		}
		if serial <= prev.Manifest.Serial {
			return cli.Exit(fmt.Sprintf("build: serial %d is not newer than %s's %d: nodes would refuse it", serial, p, prev.Manifest.Serial), 1)
		}
	}
	key, err := sign.LoadPrivateKey(c.String("key"), passphrase)
	if err != nil {
		return cli.Exit("build: "+err.Error(), 1)
	}
	files, err := pack.Files(site)
	if err != nil {
		return err
	}
	m := archive.Manifest{Serial: serial, Created: created, Revision: gitRevision(dir)}
	if d := c.Duration("expires"); d > 0 {
		e := created.Add(d)
		m.Expires = &e
	}
	var buf bytes.Buffer
	if _, err := archive.Write(&buf, m, files, key); err != nil {
		return cli.Exit("build: "+err.Error(), 1)
	}
	out := c.String("output")
	if err := renameio.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return cli.Exit("build: "+err.Error(), 1)
	}
	fmt.Fprintf(c.App.Writer, "%s: serial %d, %d services, %d VIPs, %d nodes, %d bytes\n", out, serial, len(site.Services), len(site.VIPs), len(site.Nodes), buf.Len())
	if prev != nil {
		old, err := pack.Site(prev)
		if err != nil {
			return err
		}
		d, err := bundlediff.Compute(old, site)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "against serial %d:\n", prev.Manifest.Serial)
		d.WriteSummary(c.App.Writer)
	}
	return nil
}

// openBundle reads and verifies a bundle with the --pubkey/--trusted flags.
func openBundle(c *cli.Context, file string) (*archive.Bundle, error) {
	tr, err := trustFromFlags(c)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("%s: %v", c.Command.Name, err), 1)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("%s: %v", c.Command.Name, err), 1)
	}
	defer f.Close()
	b, err := archive.Read(f, tr, time.Now(), archive.Limits{})
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("%s %s: INVALID: %v", c.Command.Name, file, err), 1)
	}
	return b, nil
}

func runDiff(c *cli.Context) error {
	args, err := positional(c)
	if err != nil {
		return err
	}
	if len(args) != 2 {
		return cli.Exit("diff: want two arguments, OLD and NEW bundles", 2)
	}
	var sites [2]*model.Site
	for i, f := range args {
		b, err := openBundle(c, f)
		if err != nil {
			return err
		}
		if sites[i], err = pack.Site(b); err != nil {
			return cli.Exit(fmt.Sprintf("diff: %s: %v", f, err), 1)
		}
	}
	d, err := bundlediff.Compute(sites[0], sites[1])
	if err != nil {
		return err
	}
	d.WriteSummary(c.App.Writer)
	if !c.Bool("summary") {
		io.WriteString(c.App.Writer, "\n")
		d.WriteUnified(c.App.Writer)
	}
	return nil
}
