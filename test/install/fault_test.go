//go:build linux

package install_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/systemd"
	"github.com/lbctl/lbctl/test/systemdtest"
)

var errInjected = errors.New("injected failure")

// faulty wraps the real apply.Host. Until it fires it counts every call
// (the calls of the apply phase) and makes call number failAt fail: before
// doing anything, or, with after set, after doing its work. Once it fired
// every call (the undo) passes through. It records which units were
// stopped or restarted, the only ones whose main PID may change.
type faulty struct {
	apply.Host
	failAt int
	after  bool

	n       int
	fired   bool
	calls   []string
	cycled  []string // units stopped or restarted, by either phase
	took    map[string]time.Duration
	each    []time.Duration
	current string
	// mu guards the counters: the timed installs run unit jobs
	// concurrently (the fault tests one at a time, see Parallel).
	mu sync.Mutex
}

func (f *faulty) call(name string, do func() error) error {
	f.mu.Lock()
	if f.fired {
		f.mu.Unlock()
		return do()
	}
	f.n++
	f.calls = append(f.calls, name)
	start := time.Now()
	fail := f.n == f.failAt
	if fail {
		f.fired, f.current = true, name
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.took != nil {
			f.took[strings.Fields(name)[0]] += time.Since(start)
		}
		f.each = append(f.each, time.Since(start))
	}()
	if fail {
		if f.after {
			return errors.Join(errInjected, do())
		}
		return errInjected
	}
	return do()
}

// cycle records a unit whose process is stopped or restarted, if the call
// runs at all.
func (f *faulty) cycle(vip string) {
	if u := systemd.UnitName(vip); !slices.Contains(f.cycled, u) {
		f.cycled = append(f.cycled, u)
	}
}

// runs reports whether the call being made now is performed (not an
// injected failure before it).
func (f *faulty) runs() bool { return f.fired || f.n+1 != f.failAt || f.after }

func (f *faulty) WriteVIP(ctx context.Context, v *plan.VIP) error {
	return f.call("WriteVIP "+v.Name, func() error { return f.Host.WriteVIP(ctx, v) })
}
func (f *faulty) RemoveVIP(ctx context.Context, name string) error {
	return f.call("RemoveVIP "+name, func() error { return f.Host.RemoveVIP(ctx, name) })
}
func (f *faulty) DaemonReload(ctx context.Context) error {
	return f.call("DaemonReload", func() error { return f.Host.DaemonReload(ctx) })
}
func (f *faulty) StartUnit(ctx context.Context, vip string) error {
	return f.call("StartUnit "+vip, func() error { return f.Host.StartUnit(ctx, vip) })
}
func (f *faulty) ReloadUnit(ctx context.Context, vip string) error {
	return f.call("ReloadUnit "+vip, func() error { return f.Host.ReloadUnit(ctx, vip) })
}
func (f *faulty) RestartUnit(ctx context.Context, vip string) error {
	f.mu.Lock()
	if f.runs() {
		f.cycle(vip)
	}
	f.mu.Unlock()
	return f.call("RestartUnit "+vip, func() error { return f.Host.RestartUnit(ctx, vip) })
}
func (f *faulty) StopUnit(ctx context.Context, vip string) error {
	f.mu.Lock()
	if f.runs() {
		f.cycle(vip)
	}
	f.mu.Unlock()
	return f.call("StopUnit "+vip, func() error { return f.Host.StopUnit(ctx, vip) })
}
func (f *faulty) AddAddrs(ctx context.Context, a []netip.Addr) error {
	return f.call(fmt.Sprint("AddAddrs ", a), func() error { return f.Host.AddAddrs(ctx, a) })
}
func (f *faulty) RemoveAddrs(ctx context.Context, a []netip.Addr) error {
	return f.call(fmt.Sprint("RemoveAddrs ", a), func() error { return f.Host.RemoveAddrs(ctx, a) })
}
func (f *faulty) Firewall(ctx context.Context, fw model.Firewall) error {
	return f.call("Firewall", func() error { return f.Host.Firewall(ctx, fw) })
}
func (f *faulty) TProxy(ctx context.Context, on bool) error {
	return f.call(fmt.Sprint("TProxy ", on), func() error { return f.Host.TProxy(ctx, on) })
}
func (f *faulty) Bird(ctx context.Context, conf []byte) error {
	return f.call("Bird", func() error { return f.Host.Bird(ctx, conf) })
}
func (f *faulty) Announce(ctx context.Context, vips []plan.VIP) error {
	return f.call(fmt.Sprintf("Announce (%d VIPs)", len(vips)), func() error { return f.Host.Announce(ctx, vips) })
}
func (f *faulty) HealthGate(ctx context.Context, vips []string) error {
	return f.call(fmt.Sprint("HealthGate ", vips), func() error { return f.Host.HealthGate(ctx, vips) })
}
func (f *faulty) Drain(ctx context.Context, vips []string) error {
	return f.call(fmt.Sprint("Drain ", vips), func() error { return f.Host.Drain(ctx, vips) })
}

// callsOf is the number of Host calls apply.Do makes for an operation.
func callsOf(op plan.Op) int {
	switch op.Kind {
	case plan.VIPFiles:
		return len(op.VIPs) + len(op.Names) + 1
	case plan.StopVIP, plan.StartVIP, plan.RestartVIP:
		return 3
	case plan.ReloadVIP:
		return 2
	}
	return 1
}

// Trial is one injected failure.
type Trial struct {
	K    int    `json:"k"`
	Call string `json:"call"`
	Step string `json:"step"`
	// Err is the install's error, Diffs what differs from the state
	// before, PIDs the units whose main PID changed (all in Cycled).
	Err    string   `json:"err"`
	Diffs  []string `json:"diffs,omitempty"`
	PIDs   []string `json:"pids,omitempty"`
	Cycled []string `json:"cycled,omitempty"`
	Millis int64    `json:"ms"`
}

// FaultResult is what TestHelperFaults emits.
type FaultResult struct {
	Steps []string `json:"steps"`
	// Expected is the number of calls the steps stand for.
	Expected int      `json:"expected"`
	Calls    []string `json:"calls"`
	// Took is how long each call of the successful install took.
	Took   []time.Duration `json:"took"`
	Trials []Trial         `json:"trials"`
	// Final is the error of the last install, the one no failure was
	// injected into (it must succeed).
	Final string `json:"final"`
}

// TestHelperFaults runs inside the node, which is at release 1: it makes
// call k of the install of BUNDLE fail for k = 1, 2, ... until an install
// makes fewer calls than k (and so succeeds), comparing the node after
// every failed install with the node before.
func TestHelperFaults(t *testing.T) {
	ctx := t.Context()
	n := openInside(t)
	b, err := os.ReadFile(os.Getenv("BUNDLE"))
	if err != nil {
		t.Fatal(err)
	}
	after := os.Getenv("MODE") == "after"
	opt := install.Options{Node: nodeName}

	dry := opt
	dry.DryRun = true
	res, err := n.Installer.Install(ctx, b, dry)
	if err != nil {
		t.Fatal(err)
	}
	var out FaultResult
	var stepOfCall []string
	for i, s := range res.Plan.Steps {
		out.Steps = append(out.Steps, s.Do.String())
		for range callsOf(s.Do) {
			stepOfCall = append(stepOfCall, fmt.Sprintf("%d. %s", i+1, s.Do))
		}
	}

	out.Expected = len(stepOfCall)
	// The dry run validated the release (haproxy -c, bird -p,
	// certificates); the trials skip that, it is not what they test.
	n.Installer.Validate = func(context.Context, *model.Site, *plan.State, *plan.Plan) error { return nil }
	ref, err := capture(ctx, n.Units)
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= len(stepOfCall)+1; k++ {
		f := &faulty{Host: n.Host, failAt: k, after: after, took: map[string]time.Duration{}}
		// Fault injection counts calls: one unit job at a time keeps the
		// n-th call the same in every run (node/apply's
		// TestFaultInjectionParallel covers concurrent jobs).
		n.Installer.Host, n.Installer.Parallel = f, 1
		start := time.Now()
		_, err := n.Installer.Install(ctx, b, opt)
		if !f.fired {
			out.Calls, out.Took = f.calls, f.each
			if err != nil {
				out.Final = err.Error()
			}
			break
		}
		tr := Trial{K: k, Call: f.current, Err: firstLine(err), Cycled: f.cycled, Millis: time.Since(start).Milliseconds()}
		if k <= len(stepOfCall) {
			tr.Step = stepOfCall[k-1]
		}
		got, cerr := capture(ctx, n.Units)
		if cerr != nil {
			tr.Diffs = append(tr.Diffs, "capture: "+cerr.Error())
		}
		switch {
		case err == nil:
			tr.Diffs = append(tr.Diffs, "install succeeded despite the injected failure")
		case !errors.Is(err, errInjected):
			tr.Diffs = append(tr.Diffs, "error does not carry the injected failure: "+err.Error())
		case !errors.Is(err, apply.ErrRolledBack):
			tr.Diffs = append(tr.Diffs, "not rolled back: "+err.Error())
		}
		tr.Diffs = append(tr.Diffs, diff(ref, got, diffOptions{PIDsMayChange: f.cycled})...)
		for u, s := range got.Units {
			if r, ok := ref.Units[u]; ok && r.MainPID != s.MainPID {
				tr.PIDs = append(tr.PIDs, u)
			}
		}
		slices.Sort(tr.PIDs)
		out.Trials = append(out.Trials, tr)
		if len(tr.Diffs) == 0 {
			ref.Units = got.Units // PIDs of cycled units moved on
		}
	}
	systemdtest.Emit(t, out)
}

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	s := strings.TrimSpace(err.Error())
	if i := strings.Index(s, "\n"); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// TestFaultInjection upgrades campus release 1 to release 2 (a VIP added,
// one removed, one reloaded, one restarted with TPROXY routing going away,
// bird.conf changed) while every call the applier makes to the node fails
// in turn, first before the call does anything, then after it did its
// work; after each failed install the node must equal the node before.
func TestFaultInjection(t *testing.T) {
	systemdtest.SkipUnlessRoot(t)
	if testing.Short() {
		t.Skip("long (a minute or two): skipped with -short")
	}
	// The two long tests run side by side: most of their time is spent
	// waiting for systemd, HAProxy and BIRD in their own nodes.
	t.Parallel()
	r1, r2 := tree(t, nil), tree(t, upgradeEdits(t))
	n := newNode(t, resolve(t, r1), resolve(t, r2))
	n.install(n.put(build(t, n.keys, r1, 1), "1"))
	b2 := n.put(build(t, n.keys, r2, 2), "2")

	total := 0
	for _, mode := range []string{"before", "after"} {
		if mode == "after" {
			n.mustLbctl("rollback", "--config", configPath, "1")
		}
		var res FaultResult
		start := time.Now()
		systemdtest.RunInside(t, n.sd, "TestHelperFaults", map[string]string{"BUNDLE": b2, "MODE": mode}, &res)
		if len(res.Calls) == 0 || len(res.Trials) != len(res.Calls) {
			t.Fatalf("%s: %d trials for %d calls", mode, len(res.Trials), len(res.Calls))
		}
		if len(res.Calls) != res.Expected {
			t.Errorf("%s: the install made %d calls, its %d steps stand for %d", mode, len(res.Calls), len(res.Steps), res.Expected)
		}
		if res.Final != "" {
			t.Errorf("%s: the install without an injected failure failed: %s", mode, res.Final)
		}
		failed := 0
		pids := map[string]int{}
		for _, tr := range res.Trials {
			if len(tr.Diffs) > 0 {
				failed++
				t.Errorf("%s: failure at call %d (%s, step %s): node differs from before:\n  %s\n  install error: %s",
					mode, tr.K, tr.Call, tr.Step, strings.Join(tr.Diffs, "\n  "), tr.Err)
			}
			for _, u := range tr.PIDs {
				pids[u]++
			}
		}
		total += len(res.Trials)
		t.Logf("%s: %d steps, %d calls, %d injection points, %d with the node not restored, in %v",
			mode, len(res.Steps), len(res.Calls), len(res.Trials), failed, time.Since(start).Round(time.Millisecond))
		t.Logf("%s: main PIDs that changed (stopped or restarted by the plan or its undo): %v", mode, pids)
		for i, c := range res.Calls {
			t.Logf("  call %2d: %-50s %6v, trial %5d ms: %s", i+1, c, res.Took[i].Round(time.Millisecond), res.Trials[i].Millis, res.Trials[i].Err)
		}
		checkRelease(t, n.loadState("2"), n.capture())
	}
	t.Logf("injection points covered: %d", total)
}

// TestHelperFailLast installs BUNDLE with a failure injected at its last
// host call and emits the install's error.
func TestHelperFailLast(t *testing.T) {
	ctx := t.Context()
	n := openInside(t)
	b, err := os.ReadFile(os.Getenv("BUNDLE"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Installer.Install(ctx, b, install.Options{Node: nodeName, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, s := range res.Plan.Steps {
		calls += callsOf(s.Do)
	}
	n.Installer.Host, n.Installer.Parallel = &faulty{Host: n.Host, failAt: calls}, 1
	_, err = n.Installer.Install(ctx, b, install.Options{Node: nodeName})
	systemdtest.Emit(t, fmt.Sprint(err))
}

// TestColdInstallFailure fails the last call of a node's first install
// (the announcement, after BIRD was configured and started): the install
// must roll back, and the node must take the next install.
func TestColdInstallFailure(t *testing.T) {
	systemdtest.SkipUnlessRoot(t)
	r1 := tree(t, nil)
	n := newNode(t, resolve(t, r1))
	p1 := n.put(build(t, n.keys, r1, 1), "1")
	var msg string
	systemdtest.RunInside(t, n.sd, "TestHelperFailLast", map[string]string{"BUNDLE": p1}, &msg)
	if !strings.Contains(msg, errInjected.Error()) || !strings.Contains(msg, apply.ErrRolledBack.Error()) {
		t.Errorf("first install with its last call failing: %s", msg)
	}
	st := n.capture()
	if len(st.VIPs) != 0 || len(st.Units) > 1 || st.Current != "" || len(st.Intent) > 0 {
		t.Errorf("after the rolled back first install: VIPs %v, units %v, current %q, intent %q", st.VIPs, st.Units, st.Current, st.Intent)
	}
	// BIRD cannot go back to not running with the distribution's
	// bird.conf; it keeps the release's, with nothing announced. An empty
	// bird.conf (what the undo used to write) would keep it from starting.
	if len(st.Files[birdConf]) == 0 || len(st.BirdRoutes) != 0 {
		t.Errorf("after the rolled back first install: bird.conf %d bytes, BIRD routes %v", len(st.Files[birdConf]), st.BirdRoutes)
	}
	if out, _, err := n.lbctl("status", "--config", configPath); err != nil {
		t.Errorf("lbctl status after the failed first install: %v\n%s", err, out)
	}
	n.install(p1)
	checkRelease(t, n.loadState("1"), n.capture())
}
