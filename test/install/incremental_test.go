//go:build linux

package install_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/systemd"
	"github.com/lbctl/lbctl/test/systemdtest"
)

// incrementalRuns is how many incremental installs are timed each way.
const incrementalRuns = 5

const wikiVIP = "192.0.2.11"

// Timing is one in-process install, split by host call kind.
type Timing struct {
	Total time.Duration            `json:"total"`
	Calls map[string]time.Duration `json:"calls"`
}

// TestHelperTimedInstall installs the BUNDLES (comma separated paths) one
// after the other in this process, timing each install and its host
// calls; it runs inside the node.
func TestHelperTimedInstall(t *testing.T) {
	ctx := t.Context()
	n := openInside(t)
	var out []Timing
	for _, p := range strings.Split(os.Getenv("BUNDLES"), ",") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := &faulty{Host: n.Host, took: map[string]time.Duration{}}
		n.Installer.Host = f
		start := time.Now()
		if _, err := n.Installer.Install(ctx, b, install.Options{Node: nodeName}); err != nil {
			t.Fatalf("install %s: %v", p, err)
		}
		out = append(out, Timing{Total: time.Since(start), Calls: f.took})
	}
	systemdtest.Emit(t, out)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestIncremental installs campus, then releases that each change one
// service (web/wiki's balance algorithm, back and forth): exactly one VIP
// unit is reloaded (its workers replaced, its main PID kept, its config
// changed) and every other VIP keeps its main PID, its workers and its
// config bytes. It times the cold install and the incremental ones: the
// times are benchmark figures (docs/BENCHMARKS.md), not asserted.
func TestIncremental(t *testing.T) {
	systemdtest.SkipUnlessRoot(t)
	rS := tree(t, nil)
	rR := tree(t, map[string]func(string) string{"web/wiki.yaml": replace(t, "balance: source", "balance: roundrobin")})
	n := newNode(t, resolve(t, rS))
	// The cold install runs in process, for its breakdown (TestColdInstall
	// times lbctl install itself).
	var cold []Timing
	systemdtest.RunInside(t, n.sd, "TestHelperTimedInstall", map[string]string{"BUNDLES": n.put(build(t, n.keys, rS, 1), "1")}, &cold)
	checkRelease(t, n.loadState("1"), n.capture())

	wikiCfg := filepath.Join(vipDir, wikiVIP, "haproxy.cfg")
	wikiUnit := systemd.UnitName(wikiVIP)
	serial := uint64(1)
	next := func() string {
		serial++
		dir := rR
		if serial%2 == 1 {
			dir = rS
		}
		return n.put(build(t, n.keys, dir, serial), itoa(serial))
	}

	var wall []time.Duration
	before := n.capture()
	for range incrementalRuns {
		b := next()
		out, took := n.install(b)
		wall = append(wall, took)
		if !strings.Contains(out, "0 added, 1 changed, 0 removed, 7 unchanged") {
			t.Errorf("install %s: want one changed VIP:\n%s", b, out)
		}
		after := n.capture()
		checkRelease(t, n.loadState(itoa(serial)), after)
		reloaded := 0
		for u, s := range after.Units {
			if !strings.HasPrefix(u, "lb-haproxy@") {
				continue
			}
			if s.MainPID != before.Units[u].MainPID {
				t.Errorf("%s: main PID %d -> %d, want unchanged", u, before.Units[u].MainPID, s.MainPID)
			}
			if !slices.Equal(after.Workers[u], before.Workers[u]) {
				reloaded++
				if u != wikiUnit {
					t.Errorf("%s: workers %v -> %v: reloaded, but its VIP did not change", u, before.Workers[u], after.Workers[u])
				}
			}
		}
		if reloaded != 1 {
			t.Errorf("%d VIP units reloaded, want exactly 1 (%s)", reloaded, wikiUnit)
		}
		for p, data := range after.Files {
			switch {
			case p == wikiCfg:
				if string(data) == string(before.Files[p]) {
					t.Errorf("%s unchanged by the release that changes web/wiki", p)
				}
			case strings.HasPrefix(p, vipDir+"/") && string(data) != string(before.Files[p]):
				t.Errorf("%s changed, but its VIP did not", p)
			}
		}
		before = after
	}

	var paths []string
	for range incrementalRuns {
		paths = append(paths, next())
	}
	var timings []Timing
	systemdtest.RunInside(t, n.sd, "TestHelperTimedInstall", map[string]string{"BUNDLES": strings.Join(paths, ",")}, &timings)
	var total, gate, reload []time.Duration
	for _, tm := range timings {
		total = append(total, tm.Total)
		gate = append(gate, tm.Calls["HealthGate"])
		reload = append(reload, tm.Calls["WriteVIP"]+tm.Calls["ReloadUnit"])
	}
	rest := make([]time.Duration, len(total))
	for i := range total {
		rest[i] = total[i] - gate[i]
	}
	t.Logf("cold install (8 VIPs, BIRD started) in process: %v; by host call: %v", cold[0].Total.Round(time.Millisecond), roundMap(cold[0].Calls))
	t.Logf("incremental install (1 VIP reloaded), lbctl install wall time: median %v of %v", median(wall).Round(time.Millisecond), round(wall))
	t.Logf("incremental install in process: median %v (health gate %v, write+reload %v, the rest without the gate %v)",
		median(total).Round(time.Millisecond), median(gate).Round(time.Millisecond), median(reload).Round(time.Millisecond), median(rest).Round(time.Millisecond))
}

func round(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func roundMap(m map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, d := range m {
		out[k] = d.Round(time.Millisecond)
	}
	return out
}

// openInside skips unless the test runs inside a node, and opens the node
// (its lbctl.yaml, host and installer) as lbctl does, closed when the test
// ends.
func openInside(t *testing.T) *setup.Node {
	t.Helper()
	systemdtest.SkipUnlessInside(t)
	cfg, err := setup.LoadConfig(configPath)
	if err != nil {
		t.Fatal(err)
	}
	n, err := setup.Open(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}
