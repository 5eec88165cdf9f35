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
	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

func init() {
	register(
		&cli.Command{
			Name:      "build",
			Usage:     "resolve an intents tree into a signed bundle",
			ArgsUsage: "DIR",
			Description: "Checks and resolves DIR as lbctl check does, then writes the bundle nodes install: the resolved model and\n" +
				"every node's profile, with a manifest signed by --key. The same tree, --serial, --time and --expires give\n" +
				"the same bytes. With --against, it says what changed since that bundle (verified first).",
			Flags: append(append(resolveFlags(),
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the bundle to `FILE`"},
				&cli.StringFlag{Name: "key", Usage: "sign with the secret key `FILE` (NAME.key)"},
				&cli.Uint64Flag{Name: "serial", DefaultText: "the build time in Unix seconds, which only grows", Usage: "bundle `SERIAL`"},
				&cli.StringFlag{Name: "expires", Value: defaultExpiry, Usage: "nodes refuse the bundle this `DURATION` after its creation time (e.g. 720h, 30d); 0 or never: no expiry, which must be asked for"},
				&cli.StringFlag{Name: "time", Usage: "creation `TIME` (RFC 3339 or Unix seconds; default $SOURCE_DATE_EPOCH or now): the same tree, serial and time give the same bytes"},
				&cli.StringFlag{Name: "against", Usage: "print what changes against the previous `BUNDLE` (verified with --pubkey/--trusted)"},
				crossSiteFlag,
			), trustFlags()...),
			Action: runBuild,
		},
	)
}

// crossSiteFlag lets build --against and diff compare bundles of two
// sites, which they refuse otherwise: nodes of one site refuse the other's
// bundles, so such a comparison is almost always the wrong file.
var crossSiteFlag = &cli.BoolFlag{Name: "cross-site", Usage: "compare bundles of two different sites (refused otherwise; the summary starts with SITE CHANGED)"}

// checkSameSite refuses bundles of two sites without --cross-site.
func checkSameSite(c *cli.Context, oldFile string, old, new *model.Site) error {
	if old.Name == new.Name || c.Bool("cross-site") {
		return nil
	}
	return cli.Exit(fmt.Sprintf("%s: %s is a bundle of site %q, the other of site %q: nodes of one site refuse the other's bundles (give --cross-site to compare them anyway)",
		c.Command.Name, oldFile, old.Name, new.Name), 1)
}

// defaultExpiry is how long after its creation a bundle is accepted unless
// --expires says otherwise: long enough for a node that was offline to sync,
// short enough that a leaked old bundle stops installing.
const defaultExpiry = "30d"

// parseExpiry parses --expires: a Go duration, a number of days ("30d"),
// or "0"/"never" for no expiry (ok false).
func parseExpiry(s string) (d time.Duration, ok bool, err error) {
	switch s = strings.TrimSpace(s); s {
	case "0", "never", "none":
		return 0, false, nil
	}
	d, err = clix.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false, fmt.Errorf("--expires %q: want a duration (720h), a number of days (30d) or never", s)
	}
	if d == 0 {
		return 0, false, nil
	}
	return d, true, nil
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
	m, err := buildManifest(c)
	if err != nil {
		return err
	}
	m.Revision = gitRevision(dir)
	m = pack.Manifest(site, m)
	prev, err := againstBundle(c, m.Serial, site)
	if err != nil {
		return err
	}
	size, err := writeBundle(c, site, m)
	if err != nil {
		return err
	}
	expiresText := "never"
	if m.Expires != nil {
		expiresText = m.Expires.Format(time.RFC3339)
	}
	fmt.Fprintf(c.App.Writer, "%s: serial %d, expires %s, %d services, %d VIPs, %d nodes, %d bytes\n", c.String("output"), m.Serial, expiresText, len(site.Services), len(site.VIPs), len(site.Nodes), size)
	if prev == nil {
		return nil
	}
	return printAgainst(c.App.Writer, prev, site)
}

// against is the --against bundle: its serial and resolved model.
type against struct {
	serial uint64
	site   *model.Site
}

// printAgainst summarises what changed since the --against bundle.
func printAgainst(w io.Writer, prev *against, site *model.Site) error {
	d, err := bundlediff.Compute(prev.site, site)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "against serial %d:\n", prev.serial)
	d.WriteSummary(w)
	return nil
}

// buildManifest is the manifest --time, --expires and --serial ask for
// (the serial defaults to the creation time); a bundle that would be
// expired already is refused.
func buildManifest(c *cli.Context) (archive.Manifest, error) {
	created, err := buildTime(c)
	if err != nil {
		return archive.Manifest{}, err
	}
	expiry, expires, err := parseExpiry(c.String("expires"))
	if err != nil {
		return archive.Manifest{}, cli.Exit("build: "+err.Error(), 2)
	}
	if expires && !created.Add(expiry).After(time.Now()) {
		return archive.Manifest{}, cli.Exit(fmt.Sprintf("build: the bundle would be expired already: created %s, expires %s (--expires %s); give a later --time, a longer --expires, or --expires never",
			created.Format(time.RFC3339), created.Add(expiry).Format(time.RFC3339), c.String("expires")), 1)
	}
	m := archive.Manifest{Serial: c.Uint64("serial"), Created: created}
	if m.Serial == 0 {
		m.Serial = uint64(created.Unix())
	}
	if expires {
		e := created.Add(expiry)
		m.Expires = &e
	}
	return m, nil
}

// againstBundle opens the --against bundle (nil without the flag), whose
// serial must be older than serial and whose site must be site's (unless
// --cross-site). It runs before the new bundle is written.
func againstBundle(c *cli.Context, serial uint64, site *model.Site) (*against, error) {
	p := c.String("against")
	if p == "" {
		return nil, nil
	}
	prev, err := openBundle(c, p)
	if err != nil {
		return nil, err
	}
	if serial <= prev.Manifest.Serial {
		return nil, cli.Exit(fmt.Sprintf("build: serial %d is not newer than %s's %d: nodes would refuse it", serial, p, prev.Manifest.Serial), 1)
	}
	old, err := pack.Site(prev)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("build: %s: %v", p, err), 1)
	}
	if err := checkSameSite(c, p, old, site); err != nil {
		return nil, err
	}
	return &against{serial: prev.Manifest.Serial, site: old}, nil
}

// writeBundle signs the site's bundle with --key and writes it to
// --output atomically; it returns its size.
func writeBundle(c *cli.Context, site *model.Site, m archive.Manifest) (int, error) {
	key, err := sign.LoadPrivateKey(c.String("key"), passphrase)
	if err != nil {
		return 0, cli.Exit("build: "+err.Error(), 1)
	}
	files, err := pack.Files(site)
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	if _, err := archive.Write(&buf, m, files, key); err != nil {
		return 0, cli.Exit("build: "+err.Error(), 1)
	}
	if err := renameio.WriteFile(c.String("output"), buf.Bytes(), 0o644); err != nil {
		return 0, cli.Exit("build: "+err.Error(), 1)
	}
	return buf.Len(), nil
}

// openBundle reads and verifies a bundle with the --pubkey/--trusted flags.
func openBundle(c *cli.Context, file string) (*archive.Bundle, error) {
	tr, err := trustFromFlags(c)
	if err != nil {
		return nil, err
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
