// Command mkdeb builds dist/lbctl_<version>_amd64.deb from
// packaging/nfpm.yaml and an lbctl binary (`make deb`).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/lbctl/lbctl/packaging"
)

func main() {
	root := flag.String("root", ".", "repository root")
	bin := flag.String("bin", "bin/lbctl", "lbctl binary to package")
	out := flag.String("out", "dist", "output directory")
	describe := flag.String("describe", "", "git describe output the version is made from (default: run git describe --always --dirty)")
	flag.Parse()
	if err := run(*root, *bin, *out, *describe); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func git(root string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func run(root, bin, out, describe string) error {
	var err error
	if describe == "" {
		if describe, err = git(root, "describe", "--always", "--dirty"); err != nil {
			return err
		}
	}
	// File times and the changelog date: SOURCE_DATE_EPOCH, else the
	// commit time, so that a build is reproducible.
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git(root, "log", "-1", "--format=%ct"); err != nil {
			return err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("time %q: %w", epoch, err)
	}
	mtime := time.Unix(sec, 0).UTC()
	version, err := packaging.DebVersion(describe, mtime)
	if err != nil {
		return err
	}
	path, err := packaging.Build(packaging.Options{Root: root, Binary: bin, Version: version, OutDir: out, MTime: mtime})
	if err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}
