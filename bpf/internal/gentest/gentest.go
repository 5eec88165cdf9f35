// Package gentest checks that committed bpf2go output is up to date: it
// reruns a package's go:generate line into a temporary directory and
// compares the bytes. Only tests import it.
package gentest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Reproducible reruns the go:generate line of gen.go in the current
// directory (the package pkg) and fails unless each of outputs is
// byte-identical to the committed file. It skips without clang, llvm-strip
// and libbpf's headers, and when this machine's clang is not the one named
// in clangVersion (other compilers emit other, equally valid, bytes).
func Reproducible(t *testing.T, pkg, clangVersion string, outputs ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skips running clang")
	}
	needTools(t, clangVersion)
	args := generateLine(t)
	out := t.TempDir()
	// go run github.com/cilium/ebpf/cmd/bpf2go FLAGS...: put the output
	// directory flag right after the tool.
	args = append(append(append([]string{}, args[1:3]...), "-output-dir", out), args[3:]...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOPACKAGE="+pkg, "GOFILE=gen.go")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	for _, name := range outputs {
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: regenerated output differs from the committed file (%d vs %d bytes); run make generate and commit", name, len(got), len(want))
		}
	}
}

// needTools skips t unless the compiler that built the committed objects
// and libbpf's headers are here.
func needTools(t *testing.T, clangVersion string) {
	t.Helper()
	for _, tool := range []string{"clang", "llvm-strip", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to regenerate eBPF objects (make generate installs it): %v", tool, err)
		}
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skipf("needs libbpf-dev headers to regenerate eBPF objects: %v", err)
	}
	want, err := os.ReadFile(clangVersion)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := exec.Command("clang", "--version").Output()
	if err != nil {
		t.Fatalf("clang --version: %v", err)
	}
	have, _, _ := strings.Cut(string(ver), "\n")
	if w := strings.TrimSpace(string(want)); have != w {
		t.Skipf("committed objects were built by %q, this machine has %q", w, have)
	}
}

// generateLine is the go:generate command of gen.go, split into words.
func generateLine(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate "); ok {
			args = strings.Fields(rest)
		}
	}
	if len(args) < 4 || args[0] != "go" || args[1] != "run" || !strings.HasSuffix(args[2], "/bpf2go") {
		t.Fatalf("gen.go: unexpected go:generate line %q", args)
	}
	return args
}
