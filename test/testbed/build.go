package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Binaries are the two programs a sandbox test runs: the product's lbctl
// (put on the LB nodes) and lbctl-testbed (the sandbox's backends re-execute
// it as `lbctl-testbed serve-backend`).
type Binaries struct {
	LBCTL, Testbed string
}

// BackendCommand is the Options.BackendCommand that runs the backends with
// b.Testbed.
func (b Binaries) BackendCommand() []string { return []string{b.Testbed, "serve-backend"} }

// BuildBinaries builds ./cmd/lbctl and ./test/cmd/lbctl-testbed of the
// module at root into dir (static, trimmed paths, as `make build` does).
func BuildBinaries(ctx context.Context, root, dir string) (Binaries, error) {
	b := Binaries{LBCTL: filepath.Join(dir, "lbctl"), Testbed: filepath.Join(dir, "lbctl-testbed")}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-o", dir+string(filepath.Separator), "./cmd/lbctl", "./test/cmd/lbctl-testbed")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build ./cmd/lbctl ./test/cmd/lbctl-testbed: %w\n%s", err, out)
	}
	return b, nil
}
