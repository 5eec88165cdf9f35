package archtest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// kernelLibraries are the modules that talk to the kernel or to D-Bus. A
// pure package (planners, renderers, the model, the drift check) links none
// of them: it must build and be testable with literals on any machine.
var kernelLibraries = []string{
	"github.com/google/nftables",
	"github.com/mdlayher/netlink",
	"github.com/jsimonetti/rtnetlink",
	"github.com/vishvananda/netlink",
	"github.com/godbus/dbus",
	"github.com/coreos/go-systemd/v22/dbus",
	"github.com/cilium/ebpf",
}

// purePackages are the planners, renderers and pure halves of node packages
// (patterns as `go list` takes them).
var purePackages = []string{
	"./bundle/...",
	"./node/plan",
	"./node/drift",
	"./node/nft/nftspec",
	"./node/netlink/netstate",
	"./node/target",
	"./health",
	"./systemd/unitname",
}

// pkg is one package of `go list -deps` with its direct imports.
type pkg struct {
	path    string
	imports []string
}

// deps lists the packages patterns depend on (themselves included), without
// tests, as `go list -deps` does.
func deps(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to list dependencies")
		}
	}
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}, patterns...)
	cmd := exec.Command(gobin, args...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", strings.Join(patterns, " "), err, msg)
	}
	var ps []pkg
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			ps = append(ps, pkg{path: f[0], imports: f[1:]})
		}
	}
	return ps
}

// importers names the packages in ps that import path directly.
func importers(ps []pkg, path string) []string {
	var out []string
	for _, p := range ps {
		if slices.Contains(p.imports, path) {
			out = append(out, p.path)
		}
	}
	return out
}

func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// TestPurePackagesLinkNoKernelLibrary: planners, renderers and the pure
// halves of node packages never link an nftables, netlink, D-Bus or eBPF
// library. When this fails, move the pure helper out of the package that
// holds the kernel client (as node/nft/nftspec and node/netlink/netstate
// are) instead of importing the client.
func TestPurePackagesLinkNoKernelLibrary(t *testing.T) {
	for _, pattern := range purePackages {
		ps := deps(t, pattern)
		for _, lib := range kernelLibraries {
			// Name the first packages outside the library that pull it in.
			var via []string
			for _, p := range ps {
				if !under(p.path, lib) {
					continue
				}
				for _, imp := range importers(ps, p.path) {
					if !under(imp, lib) && !slices.Contains(via, imp) {
						via = append(via, imp)
					}
				}
			}
			if len(via) > 0 {
				t.Errorf("%s links %s (imported by %s)", pattern, lib, strings.Join(via, ", "))
			}
		}
	}
}

// TestHealthImportsNoNodePackage: the health side (probes, evaluation, the
// agent) gets the VIPs' health specifications from package health and the
// release store through an interface; it imports neither the planner nor
// any other node package, so node/ and health/ never reach into each other.
func TestHealthImportsNoNodePackage(t *testing.T) {
	ps := deps(t, "./health/...")
	for _, p := range ps {
		if under(p.path, "github.com/lbctl/lbctl/node") {
			t.Errorf("health/... depends on %s (imported by %s)", p.path, strings.Join(importers(ps, p.path), ", "))
		}
	}
}

// TestNodeHostImportsNoAgent: node/host reaches the agent through its Agent
// interface (wired by node/setup), not by importing health/agent.
func TestNodeHostImportsNoAgent(t *testing.T) {
	ps := deps(t, "./node/host")
	for _, p := range ps {
		if under(p.path, "github.com/lbctl/lbctl/health/agent") {
			t.Errorf("node/host depends on %s (imported by %s)", p.path, strings.Join(importers(ps, p.path), ", "))
		}
	}
}
