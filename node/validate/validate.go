// Package validate checks a release on the node before anything changes:
// every new or changed VIP config with `haproxy -c` (as many at once as
// there are cores), bird.conf with
// `bird -p`, every TLS certificate a VIP of the release uses (present,
// parses, key matches, covers the service's names, not expired), and that
// the user HAProxy runs as can read every certificate, key and CA file the
// VIPs' configs name (`haproxy -c` runs as root and would not notice).
// Configs are checked in a scratch directory, never where the live ones are.
package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/cert"
	"github.com/lbctl/lbctl/node/plan"
)

// Validator runs the checks.
type Validator struct {
	// HAProxy and Bird are the binaries; defaults "haproxy" and "bird"
	// from PATH (and /usr/sbin).
	HAProxy, Bird string
	// CertDir holds the certificates.
	CertDir string
	// BirdIncludeDir is the directory bird.conf includes the announcement
	// files from; the check substitutes empty files.
	BirdIncludeDir string
	// VIPDir is where VIP configs live; references to it in a config are
	// pointed at the scratch copy for the check.
	VIPDir string
	// User and Group are who the VIPs' HAProxy runs as; default the
	// User= and Group= of the template unit (haproxy:haproxy).
	User, Group string
	Now         func() time.Time
	// Parallel is how many `haproxy -c` run at once; default the usable
	// cores.
	Parallel int
}

// Validate checks what plan p would start or reload, for Installer.Validate.
func (v *Validator) Validate(ctx context.Context, site *model.Site, next *plan.State, p *plan.Plan) error {
	scratch, err := os.MkdirTemp("", "lbctl-validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	var errs []error
	errs = append(errs, v.certs(site, next))
	errs = append(errs, v.readable(next))
	if len(next.BirdConf) > 0 {
		errs = append(errs, v.bird(ctx, scratch, next.BirdConf))
	}
	// One `haproxy -c` per new or changed VIP, as many at once as there
	// are cores; the errors keep the VIPs' order.
	names := slices.Concat(p.Added, p.Changed)
	checks := make([]error, len(names))
	sem := make(chan struct{}, v.parallel())
	var wg sync.WaitGroup
	for i, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			checks[i] = v.haproxy(ctx, scratch, next.VIP(name))
		})
	}
	wg.Wait()
	return errors.Join(append(errs, checks...)...)
}

func (v *Validator) parallel() int {
	if v.Parallel > 0 {
		return v.Parallel
	}
	return runtime.GOMAXPROCS(0)
}

func lookPath(name, def string) string {
	if name != "" {
		return name
	}
	if p, err := exec.LookPath(def); err == nil {
		return p
	}
	return "/usr/sbin/" + def
}

// localName refuses a name that is not one plain element of a path: the
// VIP names and file names of a release become paths here and on the
// node (the resolved model's grammar refuses such names when a bundle is
// decoded; this keeps the scratch copy inside its directory whatever
// calls Validate).
func localName(what, name string, nested bool) error {
	if !filepath.IsLocal(name) || (!nested && strings.ContainsAny(name, `/\`)) || strings.ContainsRune(name, 0) {
		return fmt.Errorf("%s %q: not a plain name inside its directory", what, name)
	}
	return nil
}

func (v *Validator) haproxy(ctx context.Context, scratch string, vip *plan.VIP) error {
	if err := localName("vip", vip.Name, false); err != nil {
		return err
	}
	for _, f := range vip.Files {
		if err := localName("vip "+vip.Name+": file", f.Path, true); err != nil {
			return err
		}
	}
	dir := filepath.Join(scratch, "vips", vip.Name)
	live := filepath.Join(v.VIPDir, vip.Name)
	var cfg string
	for _, f := range vip.Files {
		data := f.Data
		if v.VIPDir != "" {
			data = bytes.ReplaceAll(data, []byte(live+"/"), []byte(dir+"/"))
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
		if f.Path == "haproxy.cfg" {
			cfg = p
		}
	}
	if cfg == "" {
		return fmt.Errorf("vip %s: no haproxy.cfg", vip.Name)
	}
	out, err := exec.CommandContext(ctx, lookPath(v.HAProxy, "haproxy"), "-c", "-f", cfg).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vip %s: haproxy -c: %s", vip.Name, firstLines(out, dir, live))
	}
	return nil
}

func (v *Validator) bird(ctx context.Context, scratch string, conf []byte) error {
	inc := filepath.Join(scratch, "bird-include")
	if err := os.MkdirAll(inc, 0o700); err != nil {
		return err
	}
	for _, n := range []string{"announce4.conf", "announce6.conf"} {
		if err := os.WriteFile(filepath.Join(inc, n), nil, 0o600); err != nil {
			return err
		}
	}
	if v.BirdIncludeDir != "" {
		conf = bytes.ReplaceAll(conf, []byte(v.BirdIncludeDir+"/"), []byte(inc+"/"))
	}
	p := filepath.Join(scratch, "bird.conf")
	if err := os.WriteFile(p, conf, 0o600); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, lookPath(v.Bird, "bird"), "-p", "-c", p).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bird.conf: bird -p: %s", firstLines(out, scratch, "(bird.conf)"))
	}
	return nil
}

// certs checks the certificates of the services on the release's VIPs,
// each error naming the file and the VIPs and services that need it.
func (v *Validator) certs(site *model.Site, next *plan.State) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	var errs []error
	for _, u := range site.Certificates() {
		if !u.Uses(func(vip string) bool { return next.VIP(vip) != nil }) {
			continue
		}
		if _, err := cert.CheckFile(v.CertDir, u.Name, u.Hosts, now()); err != nil {
			errs = append(errs, fmt.Errorf("%w (%s)", err, u.NeededBy()))
		}
	}
	return errors.Join(errs...)
}

// readable checks that HAProxy, running as the unit's user, can read every
// file the configs of the release's VIPs name (all of them, as certs does:
// an unchanged VIP would fail at its next restart). Files that do not exist
// are left to certs and haproxy -c.
//
// The check evaluates the kernel's rules (owner, group and other bits, POSIX
// ACLs, search permission on every directory on the way, symlinks followed)
// rather than opening the files as that user: switching uid needs
// CAP_SETUID, which lbctl-sync.service does not have, and an in-process
// evaluation can say which directory or file blocks and why.
func (v *Validator) readable(next *plan.State) error {
	name, group := v.User, v.Group
	if name == "" {
		name, group = UnitAccount()
	}
	acct, err := LookupAccount(name, group)
	if err != nil {
		return err
	}
	verdict := map[string]error{}
	var errs []error
	for i := range next.VIPs {
		vip := &next.VIPs[i]
		for _, r := range references(vip, v.VIPDir) {
			err, ok := verdict[r.Path]
			if !ok {
				err = acct.CanRead(r.Path)
				verdict[r.Path] = err
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("vip %s: %s %s: %w", vip.Name, r.Kind, r.Path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// firstLines shortens tool output to its first lines, with the scratch
// path replaced by the live one.
func firstLines(out []byte, scratch, live string) string {
	s := strings.TrimSpace(strings.ReplaceAll(string(out), scratch, live))
	lines := strings.Split(s, "\n")
	if len(lines) > 8 {
		lines = append(lines[:8], "...")
	}
	return strings.Join(lines, "\n")
}
