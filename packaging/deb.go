// Package packaging builds lbctl's Debian package from nfpm.yaml with nfpm
// used as a library (`make deb` runs packaging/cmd/mkdeb). Besides the
// files kept here (unit files, tmpfiles.d, the default configuration,
// maintainer scripts), it generates at build time, by running the lbctl
// binary being packaged: the bash, zsh and fish completions and one man
// page per command;
// and from the build: the Debian changelog and the copyright file, which
// lists the Go modules linked into the binary.
//
// The output depends only on the inputs and MTime: two builds of the same
// commit give the same bytes.
package packaging

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

// Options of one package build.
type Options struct {
	// Root is the repository root; relative sources in the config are
	// relative to it.
	Root string
	// Config is the nfpm configuration; default Root/packaging/nfpm.yaml.
	Config string
	// Binary is the lbctl binary to package (built with CGO_ENABLED=0).
	Binary string
	// Version is the Debian version (see DebVersion).
	Version string
	// OutDir receives lbctl_<version>_<arch>.deb.
	OutDir string
	// MTime is the time of every file in the package and of the changelog
	// entry; default the Unix epoch.
	MTime time.Time
}

// debVersion is what a native Debian version may contain.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

// DebVersion turns `git describe --always --dirty` output into a Debian
// version: v1.2.3 gives 1.2.3, v1.2.3-4-gabcdef gives 1.2.3+git4.abcdef, a
// bare commit abcdef gives 0.0~git<date>.abcdef (date: the commit time,
// so later commits sort higher), and -dirty adds +dirty.
func DebVersion(describe string, commitTime time.Time) (string, error) {
	d := strings.TrimSpace(describe)
	dirty := strings.HasSuffix(d, "-dirty")
	d = strings.TrimSuffix(d, "-dirty")
	var v string
	if m := regexp.MustCompile(`^v?([0-9][0-9A-Za-z.]*)(?:-([0-9]+)-g([0-9a-f]+))?$`).FindStringSubmatch(d); m != nil && strings.Contains(m[1], ".") {
		v = m[1]
		if m[2] != "" {
			v += "+git" + m[2] + "." + m[3]
		}
	} else if regexp.MustCompile(`^[0-9a-f]{4,40}$`).MatchString(d) {
		v = "0.0~git" + commitTime.UTC().Format("20060102150405") + "." + d
	} else {
		return "", fmt.Errorf("version %q: not a git describe output", describe)
	}
	if dirty {
		v += "+dirty"
	}
	if !debVersion.MatchString(v) {
		return "", fmt.Errorf("version %q: %q is not a Debian version", describe, v)
	}
	return v, nil
}

// Build builds the package and returns its path.
func Build(opt Options) (string, error) {
	if opt.Root == "" || opt.Binary == "" || opt.Version == "" || opt.OutDir == "" {
		return "", errors.New("deb: Root, Binary, Version and OutDir are required")
	}
	if !debVersion.MatchString(opt.Version) {
		return "", fmt.Errorf("deb: %q is not a Debian version", opt.Version)
	}
	if opt.Config == "" {
		opt.Config = filepath.Join(opt.Root, "packaging", "nfpm.yaml")
	}
	if opt.MTime.IsZero() {
		opt.MTime = time.Unix(0, 0)
	}
	bin, err := filepath.Abs(opt.Binary)
	if err != nil {
		return "", err
	}
	gen, err := os.MkdirTemp("", "lbctl-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(gen)

	vars := map[string]string{"VERSION": opt.Version, "BIN": bin, "GEN": gen}
	cfg, err := nfpm.ParseFileWithEnvMapping(opt.Config, func(k string) string { return vars[k] })
	if err != nil {
		return "", fmt.Errorf("deb: %s: %w", opt.Config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	info.MTime = opt.MTime.UTC()
	info = nfpm.WithDefaults(info)
	if err := generate(gen, bin, info, opt); err != nil {
		return "", err
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(opt.Root, p)
	}
	for _, c := range info.Contents {
		c.Source = abs(c.Source)
	}
	info.Scripts.PostInstall = abs(info.Scripts.PostInstall)
	info.Scripts.PreRemove = abs(info.Scripts.PreRemove)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(opt.OutDir, pkg.ConventionalFileName(info))
	var buf bytes.Buffer
	if err := pkg.Package(info, &buf); err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return out, nil
}

// generate writes the files made at build time into gen.
func generate(gen, bin string, info *nfpm.Info, opt Options) error {
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("deb: lbctl %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out, nil
	}
	bash, err := run("completion", "bash")
	if err != nil {
		return err
	}
	zsh, err := run("completion", "zsh")
	if err != nil {
		return err
	}
	fish, err := run("completion", "fish")
	if err != nil {
		return err
	}
	// One page per command, gzip -9n: lbctl.1.gz, lbctl-build.1.gz, ...
	if _, err := run("man", "--dir", filepath.Join(gen, "man"), "--gzip"); err != nil {
		return err
	}
	copyright, err := Copyright(bin, opt.MTime)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"lbctl.bash":   bash,
		"_lbctl":       zsh,
		"lbctl.fish":   fish,
		"changelog.gz": gzip9n(Changelog(info.Name, opt.Version, info.Maintainer, opt.MTime)),
		"copyright":    copyright,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(gen, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gzip9n compresses like `gzip -9n`: best compression, no name, no time.
func gzip9n(b []byte) []byte {
	var buf bytes.Buffer
	z, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	z.Write(b)
	z.Close()
	return buf.Bytes()
}

// Changelog is the Debian changelog of a build: one entry, since the
// version comes from git and the history lives there.
func Changelog(name, version, maintainer string, t time.Time) []byte {
	return fmt.Appendf(nil, `%s (%s) unstable; urgency=medium

  * Package built from the lbctl repository; the changes are its git
    history.

 -- %s  %s
`, name, version, maintainer, t.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

// Copyright is the machine-readable copyright file: lbctl itself and, as
// a comment, every Go module statically linked into the binary.
func Copyright(bin string, t time.Time) ([]byte, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("deb: copyright: %w", err)
	}
	var mods strings.Builder
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		fmt.Fprintf(&mods, "  %s %s\n", d.Path, d.Version)
	}
	return fmt.Appendf(nil, `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lbctl
Source: https://github.com/lbctl/lbctl

Files: *
Copyright: %d the lbctl authors
License: lbctl
Comment: The binary /usr/bin/lbctl is statically linked (Go, %s) with
 these modules, each under its own license (see its source):
 .
%s
License: lbctl
 The lbctl authors have not chosen a license yet; until they do, no
 rights beyond installing and running this package are granted.
`, t.UTC().Year(), bi.GoVersion, indentMods(mods.String())), nil
}

// indentMods makes module lines continuation lines of the Comment field.
func indentMods(s string) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = " " + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}
