package handoff

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
// the committed ones (see ../generate_test.go).
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
	want, err := os.ReadFile("../src/clang-version.txt")
	if err != nil {
		t.Fatal(err)
	}
	ver, err := exec.Command("clang", "--version").Output()
	if err != nil {
		t.Fatalf("clang --version: %v", err)
	}
	if have, _, _ := strings.Cut(string(ver), "\n"); have != strings.TrimSpace(string(want)) {
		t.Skipf("committed objects were built by %q, this machine has %q", strings.TrimSpace(string(want)), have)
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
	if len(args) < 4 || args[0] != "go" || args[1] != "run" || !strings.HasSuffix(args[2], "/bpf2go") {
		t.Fatalf("gen.go: unexpected go:generate line %q", args)
	}
	out := t.TempDir()
	args = append(append(append([]string{}, args[1:3]...), "-output-dir", out), args[3:]...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=handoff", "GOFILE=gen.go")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	for _, name := range []string{"handoff_bpfel.o", "handoff_bpfel.go"} {
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
