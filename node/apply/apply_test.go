package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/plan"
)

func vip(name string, transparent bool, cfg string, addrs ...string) plan.VIP {
	v := plan.VIP{Name: name, Transparent: transparent, Files: []plan.File{{Path: "haproxy.cfg", Data: []byte(cfg)}}}
	for _, a := range addrs {
		v.Addresses = append(v.Addresses, netip.MustParseAddr(a))
	}
	return v
}

func state(serial uint64, bird string, vips ...plan.VIP) *plan.State {
	s := &plan.State{Serial: serial, VIPs: vips, BirdConf: []byte(bird)}
	for _, v := range vips {
		for _, a := range v.Addresses {
			if a.Is4() {
				s.Firewall.VIPs4 = append(s.Firewall.VIPs4, a)
				s.Firewall.Accept4 = append(s.Firewall.Accept4, model.AddrPort{Addr: a, Port: 443})
			} else {
				s.Firewall.VIPs6 = append(s.Firewall.VIPs6, a)
				s.Firewall.Accept6 = append(s.Firewall.Accept6, model.AddrPort{Addr: a, Port: 443})
			}
		}
		s.Firewall.Transparent = s.Firewall.Transparent || v.Transparent
	}
	return s
}

// scenarios are the transitions the fault-injection tests walk through.
func scenarios() map[string][2]*plan.State {
	a := vip("192.0.2.10", false, "a1", "192.0.2.10")
	a2 := vip("192.0.2.10", false, "a2", "192.0.2.10", "2001:db8::10")
	b := vip("192.0.2.11", false, "b1", "192.0.2.11")
	c := vip("192.0.2.12", true, "c1", "192.0.2.12")
	c2 := vip("192.0.2.12", false, "c2", "192.0.2.12")
	return map[string][2]*plan.State{
		"cold install":        {nil, state(1, "x", a, b, c)},
		"change, add, remove": {state(1, "x", a, b), state(2, "y", a2, c)},
		"transparent off":     {state(1, "x", a, c), state(2, "x", a, c2)},
		"remove everything":   {state(1, "x", a, b, c), state(2, "y")},
	}
}

// reach brings a fresh fake to state s by applying the plan from nothing.
func reach(t *testing.T, s *plan.State) *Fake {
	t.Helper()
	f := NewFake()
	if s == nil {
		return f
	}
	if err := Apply(context.Background(), f, plan.Compute(nil, s).Steps); err != nil {
		t.Fatalf("reach initial state: %v", err)
	}
	f.Calls, f.CallLog = 0, nil
	return f
}

func TestApplyReachesTarget(t *testing.T) {
	for name, sc := range scenarios() {
		t.Run(name, func(t *testing.T) {
			f := reach(t, sc[0])
			if err := Apply(context.Background(), f, plan.Compute(sc[0], sc[1]).Steps); err != nil {
				t.Fatal(err)
			}
			// The same state reached from scratch prints the same (PIDs aside).
			if want := reach(t, sc[1]); f.StateWithoutPIDs() != want.StateWithoutPIDs() {
				t.Fatalf("state after apply:\n%s\nwant:\n%s", f.StateWithoutPIDs(), want.StateWithoutPIDs())
			}
		})
	}
}

// TestFaultInjection fails every mutating call of every scenario in turn and
// checks that the node is exactly as before, main PIDs included for every
// VIP that the plan neither restarts nor stops.
func TestFaultInjection(t *testing.T) {
	points := 0
	for name, sc := range scenarios() {
		t.Run(name, func(t *testing.T) {
			p := plan.Compute(sc[0], sc[1])
			probe := reach(t, sc[0])
			if err := Apply(context.Background(), probe, p.Steps); err != nil {
				t.Fatal(err)
			}
			n := probe.Calls
			for k := 1; k <= n; k++ {
				f := reach(t, sc[0])
				before, beforePIDs := f.StateWithoutPIDs(), f.Units
				pids := map[string]uint32{}
				for v, pid := range beforePIDs {
					pids[v] = pid
				}
				f.FailAt = k
				err := Apply(context.Background(), f, p.Steps)
				if !errors.Is(err, ErrInjected) || !errors.Is(err, ErrRolledBack) {
					t.Fatalf("failure at call %d (%s): err = %v", k, probe.CallLog[k-1], err)
				}
				if got := f.StateWithoutPIDs(); got != before {
					t.Fatalf("failure at call %d (%s): state after rollback:\n%s\nwant:\n%s", k, probe.CallLog[k-1], got, before)
				}
				for v, pid := range pids {
					if restartedOrStopped(f.CallLog, v) {
						continue
					}
					if f.Units[v] != pid {
						t.Errorf("failure at call %d: %s main PID %d, was %d", k, v, f.Units[v], pid)
					}
				}
				points++
			}
		})
	}
	t.Logf("%d injection points covered", points)
	if points < 40 {
		t.Errorf("only %d injection points", points)
	}
}

func restartedOrStopped(log []string, vip string) bool {
	for _, l := range log {
		if l == "restart "+vip || l == "stop "+vip {
			return true
		}
	}
	return false
}

func TestHealthGateFailureRollsBack(t *testing.T) {
	sc := scenarios()["change, add, remove"]
	f := reach(t, sc[0])
	before := f.String()
	f.Unhealthy["192.0.2.12"] = true
	err := Apply(context.Background(), f, plan.Compute(sc[0], sc[1]).Steps)
	if err == nil || !strings.Contains(err.Error(), "vip 192.0.2.12: not healthy") || !errors.Is(err, ErrRolledBack) {
		t.Fatalf("err = %v", err)
	}
	if f.String() != before {
		t.Fatalf("state after failed health gate:\n%s\nwant:\n%s", f, before)
	}
}

func TestCancelledContextRollsBack(t *testing.T) {
	sc := scenarios()["change, add, remove"]
	f := reach(t, sc[0])
	before := f.String()
	ctx, cancel := context.WithCancel(context.Background())
	h := &cancelAfter{Fake: f, n: 3, cancel: cancel}
	err := Apply(ctx, h, plan.Compute(sc[0], sc[1]).Steps)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrRolledBack) {
		t.Fatalf("err = %v", err)
	}
	if f.String() != before {
		t.Fatalf("state after cancel:\n%s\nwant:\n%s", f, before)
	}
}

// cancelAfter cancels the context (as SIGINT would) after n mutating calls.
type cancelAfter struct {
	*Fake
	n      int
	cancel func()
}

func (c *cancelAfter) AddAddrs(ctx context.Context, a []netip.Addr) error {
	err := c.Fake.AddAddrs(ctx, a)
	if c.Calls >= c.n {
		c.cancel()
	}
	return err
}

func countCalls(log []string, call string) int {
	n := 0
	for _, l := range log {
		if l == call {
			n++
		}
	}
	return n
}

// TestColdInstallOneDaemonReload: a first install of many VIPs runs one
// daemon-reload, after every VIP's files were written and before any unit
// starts; when it fails at its end, the undo runs one daemon-reload more,
// after every unit stopped and every file was removed.
func TestColdInstallOneDaemonReload(t *testing.T) {
	const n = 12
	var vips []plan.VIP
	for i := range n {
		a := fmt.Sprintf("192.0.2.%d", 100+i)
		vips = append(vips, vip(a, i%4 == 0, "cfg"+a, a))
	}
	steps := plan.Compute(nil, state(1, "x", vips...)).Steps

	f := NewFake()
	if err := Apply(context.Background(), f, steps); err != nil {
		t.Fatal(err)
	}
	if got := countCalls(f.CallLog, "daemon-reload"); got != 1 {
		t.Fatalf("cold install of %d VIPs: %d daemon-reloads, want 1: %v", n, got, f.CallLog)
	}
	reload := slices.Index(f.CallLog, "daemon-reload")
	for i, c := range f.CallLog {
		if strings.HasPrefix(c, "write ") && i > reload || strings.HasPrefix(c, "start ") && i < reload {
			t.Errorf("call %d (%s) on the wrong side of the daemon-reload (call %d)", i, c, reload)
		}
	}
	if len(f.Units) != n {
		t.Errorf("%d units running, want %d", len(f.Units), n)
	}

	// The same install failing at its last call is undone with one more
	// daemon-reload, and leaves the empty node.
	g := NewFake()
	empty := g.String()
	g.FailAt = f.Calls
	err := Apply(context.Background(), g, steps)
	if !errors.Is(err, ErrInjected) || !errors.Is(err, ErrRolledBack) {
		t.Fatalf("err = %v", err)
	}
	if got := countCalls(g.CallLog, "daemon-reload"); got != 2 {
		t.Errorf("cold install and its undo: %d daemon-reloads, want 2: %v", got, g.CallLog)
	}
	last := 0
	for i, c := range g.CallLog {
		if c == "daemon-reload" {
			last = i
		}
	}
	for i, c := range g.CallLog[g.FailAt:] {
		if (strings.HasPrefix(c, "stop ") || strings.HasPrefix(c, "remove ")) && g.FailAt+i > last {
			t.Errorf("undo call %s after the undo's daemon-reload", c)
		}
	}
	if countCalls(g.CallLog[g.FailAt:], "daemon-reload") != 1 {
		t.Errorf("undo: want one daemon-reload: %v", g.CallLog[g.FailAt:])
	}
	if g.String() != empty {
		t.Errorf("state after the undone cold install:\n%s\nwant:\n%s", g, empty)
	}
}

// TestRestartStepFailingBeforeRestartKeepsPID: when an install that
// restarts a VIP (its transparency goes away) fails at any call before
// that VIP's restart (writing its files, the daemon-reload, starting
// another VIP), the undo restores the node without restarting the VIP:
// its main PID stays, and no restart is ever asked for.
func TestRestartStepFailingBeforeRestartKeepsPID(t *testing.T) {
	a := vip("192.0.2.10", false, "a1", "192.0.2.10")
	b := vip("192.0.2.11", false, "b1", "192.0.2.11")
	c := vip("192.0.2.12", true, "c1", "192.0.2.12")
	c2 := vip("192.0.2.12", false, "c2", "192.0.2.12")
	for name, sc := range map[string][2]*plan.State{
		"restart only":         {state(1, "x", a, c), state(2, "x", a, c2)},
		"restart and an added": {state(1, "x", a, c), state(2, "y", a, b, c2)},
	} {
		t.Run(name, func(t *testing.T) {
			steps := plan.Compute(sc[0], sc[1]).Steps
			probe := reach(t, sc[0])
			if err := Apply(context.Background(), probe, steps); err != nil {
				t.Fatal(err)
			}
			restart := slices.Index(probe.CallLog, "restart "+c.Name)
			if restart < 0 {
				t.Fatalf("the install does not restart %s: %v", c.Name, probe.CallLog)
			}
			if restart < 2 {
				t.Fatalf("only %d calls before the restart: %v", restart, probe.CallLog)
			}
			for k := 1; k <= restart; k++ {
				f := reach(t, sc[0])
				before, pid := f.String(), f.Units[c.Name]
				f.FailAt = k
				err := Apply(context.Background(), f, steps)
				if !errors.Is(err, ErrInjected) || !errors.Is(err, ErrRolledBack) {
					t.Fatalf("failure at call %d (%s): err = %v", k, probe.CallLog[k-1], err)
				}
				if f.Units[c.Name] != pid {
					t.Errorf("failure at call %d (%s): %s main PID %d, was %d", k, probe.CallLog[k-1], c.Name, f.Units[c.Name], pid)
				}
				if slices.Contains(f.CallLog, "restart "+c.Name) {
					t.Errorf("failure at call %d (%s): %s restarted: %v", k, probe.CallLog[k-1], c.Name, f.CallLog)
				}
				if got := f.String(); got != before {
					t.Errorf("failure at call %d (%s): state after rollback:\n%s\nwant:\n%s", k, probe.CallLog[k-1], got, before)
				}
			}
		})
	}
}

// TestFaultInjectionParallel is TestFaultInjection with unit jobs run
// three at a time: whichever call fails, and whatever else of its batch
// was running, the node ends exactly as before.
func TestFaultInjectionParallel(t *testing.T) {
	for name, sc := range scenarios() {
		t.Run(name, func(t *testing.T) {
			p := plan.Compute(sc[0], sc[1])
			probe := reach(t, sc[0])
			if err := RunParallel(context.Background(), probe, p.Steps, 3, nil); err != nil {
				t.Fatal(err)
			}
			if want := reach(t, sc[1]); probe.StateWithoutPIDs() != want.StateWithoutPIDs() {
				t.Fatalf("state after a parallel apply:\n%s\nwant:\n%s", probe.StateWithoutPIDs(), want.StateWithoutPIDs())
			}
			for k := 1; k <= probe.Calls; k++ {
				f := reach(t, sc[0])
				before := f.StateWithoutPIDs()
				f.FailAt = k
				err := RunParallel(context.Background(), f, p.Steps, 3, nil)
				if !errors.Is(err, ErrInjected) || !errors.Is(err, ErrRolledBack) {
					t.Fatalf("failure at call %d: err = %v", k, err)
				}
				if got := f.StateWithoutPIDs(); got != before {
					t.Fatalf("failure at call %d: state after rollback:\n%s\nwant:\n%s\ncalls %v", k, got, before, f.CallLog)
				}
			}
		})
	}
}

// inFlight is a Host whose StartUnit counts the unit jobs running at once:
// each waits until `want` run together (or no more are to come), so the
// count does not depend on the scheduler.
type inFlight struct {
	*Fake
	mu                        sync.Mutex
	cond                      *sync.Cond
	running, max, done, total int
	want                      int
}

func (h *inFlight) StartUnit(ctx context.Context, vip string) error {
	h.mu.Lock()
	h.running++
	h.max = max(h.max, h.running)
	h.cond.Broadcast()
	for h.running < h.want && h.done+h.running < h.total {
		h.cond.Wait()
	}
	h.running--
	h.done++
	h.cond.Broadcast()
	h.mu.Unlock()
	return h.Fake.StartUnit(ctx, vip)
}

// TestParallelUnitStarts: a cold install of 10 VIPs with parallel 3 starts
// its units three at a time, never more, with one daemon-reload before
// them, and reaches the same node as one after the other.
func TestParallelUnitStarts(t *testing.T) {
	const n = 10
	var vips []plan.VIP
	for i := range n {
		a := fmt.Sprintf("192.0.2.%d", 100+i)
		vips = append(vips, vip(a, i%4 == 0, "cfg"+a, a))
	}
	next := state(1, "x", vips...)
	steps := plan.Compute(nil, next).Steps
	h := &inFlight{Fake: NewFake(), want: 3, total: n}
	h.cond = sync.NewCond(&h.mu)
	var order []int
	if err := RunParallel(context.Background(), h, steps, 3, func(i int, _ plan.Step) { order = append(order, i) }); err != nil {
		t.Fatal(err)
	}
	if h.max != 3 {
		t.Errorf("at most %d unit starts ran at once, want 3", h.max)
	}
	if !slices.Equal(order, slices.Collect(func(yield func(int) bool) {
		for i := range steps {
			if !yield(i) {
				return
			}
		}
	})) {
		t.Errorf("progress callbacks %v, want every step once, in order", order)
	}
	if got := countCalls(h.CallLog, "daemon-reload"); got != 1 {
		t.Errorf("%d daemon-reloads, want 1", got)
	}
	if want := reach(t, next); h.StateWithoutPIDs() != want.StateWithoutPIDs() {
		t.Errorf("state:\n%s\nwant:\n%s", h.StateWithoutPIDs(), want.StateWithoutPIDs())
	}
}

// TestOneChangedVIPTouchesOneUnit: on a node with 40 VIPs, a release that
// changes one VIP's config writes that VIP's files and reloads its unit,
// and nothing else: no other unit is started, stopped, restarted or
// reloaded, no daemon-reload, and the cost does not depend on the 39
// others.
func TestOneChangedVIPTouchesOneUnit(t *testing.T) {
	const n = 40
	var cur, next []plan.VIP
	for i := range n {
		a := fmt.Sprintf("192.0.2.%d", 100+i)
		cur = append(cur, vip(a, false, "cfg"+a, a))
		cfg := "cfg" + a
		if i == 17 {
			cfg += " changed"
		}
		next = append(next, vip(a, false, cfg, a))
	}
	from, to := state(1, "x", cur...), state(2, "x", next...)
	f := reach(t, from)
	pids := maps.Clone(f.Units)
	if err := RunParallel(context.Background(), f, plan.Compute(from, to).Steps, 4, nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"write 192.0.2.117", "reload 192.0.2.117", "health-gate"}; !slices.Equal(f.CallLog, want) {
		t.Errorf("calls %v, want %v", f.CallLog, want)
	}
	if !maps.Equal(f.Units, pids) {
		t.Errorf("main PIDs changed: %v, were %v", f.Units, pids)
	}
}
