package netnstest

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// envMountNS names the test that the test binary, re-run by BPFFS, runs
// inside its own mount namespace.
const envMountNS = "LBCTL_TEST_IN_MOUNTNS"

// BPFFS gives the calling top-level test a bpf file system of its own, in
// a mount namespace of its own, so that pinning eBPF objects never touches
// the host's /sys/fs/bpf or mount table. The first call re-runs the test
// binary, with only this test, under `unshare --mount --propagation
// private`, reports its output and outcome, and returns inside false: the
// caller returns at once. Inside that process BPFFS mounts a fresh bpffs on
// a temporary directory and returns it with inside true.
func BPFFS(t *testing.T) (dir string, inside bool) {
	t.Helper()
	RequireRoot(t)
	if os.Getenv(envMountNS) == t.Name() {
		dir = t.TempDir()
		if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
			t.Skipf("needs a bpf file system (mount -t bpf): %v", err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
		return dir, true
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux) for a mount namespace of the test's own")
	}
	// A hang guard only: the test itself bounds its waits.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private",
		os.Args[0], "-test.run", strings.Join(run, "/"), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envMountNS+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in its own mount namespace:\n%s", out)
	switch {
	case err != nil:
		t.Fatalf("the test failed in its own mount namespace: %v", err)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()):
		t.Skip("skipped in its own mount namespace (see above)")
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("the test did not run in its own mount namespace")
	}
	return "", false
}
