package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerateReproducible rebuilds the objects with the go:generate command
// of gen.go into a temporary directory and checks they are byte-identical to
// the committed ones: the committed output is up to date with src/probe.c.
func TestGenerateReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips running clang")
	}
	for _, tool := range []string{"clang", "llvm-strip", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to regenerate eBPF objects (make generate installs it): %v", tool, err)
		}
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skipf("needs libbpf-dev headers to regenerate eBPF objects: %v", err)
	}
	// Other compilers emit other (equally valid) bytes: compare only with
	// the clang that produced the committed objects.
	want, err := os.ReadFile("src/clang-version.txt")
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
	// go run github.com/cilium/ebpf/cmd/bpf2go FLAGS...: put the output
	// directory flag right after the tool.
	if len(args) < 4 || args[0] != "go" || args[1] != "run" || !strings.HasSuffix(args[2], "/bpf2go") {
		t.Fatalf("gen.go: unexpected go:generate line %q", args)
	}
	out := t.TempDir()
	args = append(append(append([]string{}, args[1:3]...), "-output-dir", out), args[3:]...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf", "GOFILE=gen.go")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	for _, name := range []string{"probe_bpfel.o", "probe_bpfel.go"} {
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
