package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestProductLinksNoHarness: the lbctl installed on every LB node links
// nothing of the test harness: no package under test/ and no
// internal/testcert (the sandbox is this separate program).
func TestProductLinksNoHarness(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for _, goos := range []string{"linux", "darwin"} {
		cmd := exec.CommandContext(t.Context(), gobin, "list", "-deps", "./cmd/lbctl")
		cmd.Dir = "../../.."
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOOS=%s go list -deps ./cmd/lbctl: %v\n%s", goos, err, out)
		}
		const mod = "github.com/lbctl/lbctl/"
		var bad []string
		for _, p := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(p, mod)
			if ok && (strings.HasPrefix(rel, "test/") || rel == "internal/testcert") {
				bad = append(bad, p)
			}
		}
		if len(bad) > 0 {
			t.Errorf("GOOS=%s: ./cmd/lbctl links the test harness: %s", goos, strings.Join(bad, ", "))
		}
		if !strings.Contains(string(out), mod+"bundle/model") {
			t.Errorf("GOOS=%s: go list -deps ./cmd/lbctl does not list bundle/model; the check reads the wrong output:\n%s", goos, out)
		}
	}
}
