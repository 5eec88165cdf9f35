package agent_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bpf"
	renderhaproxy "github.com/lbctl/lbctl/bundle/render/haproxy"
)

// backlogOf returns the accept queue of the listener on addr in the LB
// namespace (sock_diag), or -1 when nothing listens there.
func (tb *testbed) backlogOf(t *testing.T, addr netip.AddrPort) int {
	t.Helper()
	ls, err := bpf.SockDiag{}.Listeners(tb.lb.Fd())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Addr == addr {
			return int(l.Backlog)
		}
	}
	return -1
}

// unixBacklog returns how many connections wait in the accept queue of the
// unix socket listening at path in the LB namespace (ss's Recv-Q), -1 when
// there is none. HAProxy binds a temporary name and renames it, and the
// kernel keeps the name it was bound to (path.<pid>.tmp).
func (tb *testbed) unixBacklog(t *testing.T, path string) int {
	t.Helper()
	var out []byte
	if err := tb.lb.Do(func() (err error) {
		out, err = exec.Command("ss", "-xlH").Output()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		if len(f) < 5 || f[4] != path && !strings.HasPrefix(f[4], path+".") {
			continue
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatalf("ss -xl: %q", l)
		}
		return n
	}
	return -1
}

// TestIntegrationFrozenVIPDoesNotHoldUpAnother: with VIP v000's HAProxy
// frozen (SIGSTOP; withdrawn for it) and the agent's evaluation of it
// hanging on its admin socket, a SIGKILL of VIP v001's HAProxy withdraws
// v001 through its listener event, before the frozen VIP's evaluation
// reaches its deadline: the agent checks each VIP apart, and an event never
// waits for another VIP's evaluation.
func TestIntegrationFrozenVIPDoesNotHoldUpAnother(t *testing.T) {
	needTestbed(t)
	if !ebpfUsable(t) {
		t.Skip("needs the eBPF listener events: without them a withdrawal waits for polls by design")
	}
	tb, vips, store := newSite(t, 2, siteOptions{})
	a := startAgent(t, tb, store.Root, agentOptions{})
	frozen, killed := vips[0], vips[1]
	prefixes := hostPrefixes(frozen.vip, killed.vip)
	tb.waitRR(t, prefixes, prefixes, 10*time.Second)

	if err := frozen.h.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { frozen.h.proc.Signal(syscall.SIGCONT) })
	// The agent's next evaluation of the frozen VIP connects to its admin
	// socket (the kernel completes the connection) and then waits for an
	// answer to show stat that never comes, until the evaluation's
	// deadline: from the moment its connection shows in the socket's
	// accept queue, that evaluation is hanging. The wait is a guard
	// against a hang, not a target.
	admin := renderhaproxy.AdminSocket(filepath.Join(tb.dir, "run"), frozen.vip.Name)
	waitUntil(t, 30*time.Second, "the agent's evaluation waiting at the frozen HAProxy's admin socket", func() bool {
		return tb.unixBacklog(t, admin) > 0
	})
	probeDeadline := time.Now().Add(2500 * time.Millisecond) // the evaluation's deadline, the latest it can end
	// That evaluation is not counted until it ends.
	hanging := vipStatus(t, a.status(t), frozen.vip.Name).Evaluations
	if err := killed.h.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	kp := netip.PrefixFrom(killed.vip.Addresses[0], 32)
	d := tb.waitGone4(t, kp, start, time.Millisecond, 10*time.Second)
	gone := time.Now()
	t.Logf("with v000 frozen, SIGKILL of v001's HAProxy: gone at the route reflector after %v", d.Round(10*time.Microsecond))
	if !gone.Before(probeDeadline) {
		t.Errorf("v001 withdrawn %v after the frozen VIP's evaluation deadline: its withdrawal waited for the frozen VIP's evaluation",
			gone.Sub(probeDeadline))
	}
	if n := vipStatus(t, a.status(t), frozen.vip.Name).Evaluations; n != hanging {
		t.Errorf("the frozen VIP's hanging evaluation ended (%d -> %d evaluations) before the other VIP's route was gone", hanging, n)
	}
	if out := a.proc.Output(); !logHas(out, `msg="listener closed, withdrawing"`, "vip=v001") {
		t.Errorf("the agent did not withdraw v001 on its listener event:\n%s", lastLines(out, 30))
	}
}

// TestIntegrationHungHAProxy: a SIGSTOPped HAProxy keeps its sockets, so
// no listener event fires; the agent withdraws it because the kernel shows
// its process stopped (state T, read about twice a second), or, with a
// client connecting, possibly first because its accept queue stops
// draining and its runtime API does not answer. An idle one (nobody
// connecting, and a stable VIP is probed only every probe interval) must be
// withdrawn for its process state. After SIGCONT the VIP comes back.
func TestIntegrationHungHAProxy(t *testing.T) {
	needTestbed(t)
	tb, vips, store := newSite(t, 2, siteOptions{})
	a := startAgent(t, tb, store.Root, agentOptions{})
	prefixes := hostPrefixes(vips[0].vip, vips[1].vip)
	tb.waitRR(t, prefixes, prefixes, 10*time.Second)
	for _, c := range []struct {
		name   string
		client bool
	}{{"client connecting", true}, {"idle", false}} {
		sv := vips[0]
		p := netip.PrefixFrom(sv.vip.Addresses[0], 32)
		before := vipStatus(t, a.status(t), sv.vip.Name).Transitions
		stop := func() {}
		if c.client {
			stop = connectLoop(t, tb, sv.vip.Probes[0].Addr, 20*time.Millisecond, 10*time.Second)
		}
		if err := sv.h.proc.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		d := tb.waitGone4(t, p, start, time.Millisecond, 15*time.Second)
		stop()
		st := vipStatus(t, a.status(t), sv.vip.Name)
		t.Logf("HAProxy SIGSTOPped (%s): gone at the route reflector after %v; reasons %q", c.name, d.Round(10*time.Microsecond), st.Reasons)
		stopped := fmt.Sprintf("HAProxy hung: stopped (process [%d] in state T)", sv.h.proc.PID)
		queue := "HAProxy hung: accept queue of " + sv.vip.Probes[0].Addr.String() + " not drained"
		switch {
		case len(st.Reasons) == 0:
			t.Errorf("%s: withdrawn without a reason", c.name)
		case st.Reasons[0] == stopped:
		case c.client && strings.HasPrefix(st.Reasons[0], queue):
		default:
			t.Errorf("%s: withdrawn for %q, want %q", c.name, st.Reasons, stopped)
		}
		if got := tb.rrHas(t, prefixes); len(got) != 1 || got[0] != netip.PrefixFrom(vips[1].vip.Addresses[0], 32) {
			t.Errorf("%s: the route reflector has %v; the other VIP must stay", c.name, got)
		}
		if err := sv.h.proc.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		tb.waitRR(t, prefixes, prefixes, 15*time.Second)
		if after := vipStatus(t, a.status(t), sv.vip.Name).Transitions; after != before+2 {
			t.Errorf("%s: %d transitions, want down and up once", c.name, after-before)
		}
	}
}

// TestIntegrationBusyHAProxyNotWithdrawn: an HAProxy at its frontend
// maxconn with slow backends stops accepting on purpose, so its accept queue
// holds connections between the agent's looks, like a hung one's; but it
// answers its runtime API, so the agent keeps announcing it. The load is
// bounded: 30 clients for 4 s. The listen backlog (1024) is above what
// waits: a full accept queue drops SYNs, which the agent rightly counts as
// unhealthy.
func TestIntegrationBusyHAProxyNotWithdrawn(t *testing.T) {
	needTestbed(t)
	tb := newTestbed(t, nil)
	// A backend answering after 300 ms, listening in the LB namespace.
	var ln net.Listener
	if err := tb.lb.Do(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		fmt.Fprintln(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	vips, store := newSiteOn(t, tb, 2, siteOptions{frontendExtra: "maxconn 10\n  backlog 1024", server: ln.Addr().String()})
	a := startAgent(t, tb, store.Root, agentOptions{})
	prefixes := hostPrefixes(vips[0].vip, vips[1].vip)
	tb.waitRR(t, prefixes, prefixes, 10*time.Second)

	busy := vips[0].vip
	before := vipStatus(t, a.status(t), busy.Name).Transitions
	var served, queuedLooks atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(4 * time.Second)
	for range 30 {
		wg.Go(func() {
			for time.Now().Before(end) {
				if get(tb, busy.Probes[0].Addr) {
					served.Add(1)
				}
			}
		})
	}
	// Meanwhile the route must stay, and the queue must really hold
	// connections between looks (or the test proves nothing).
	var lost []netip.Prefix
	for time.Now().Before(end) {
		if tb.backlogOf(t, busy.Probes[0].Addr) > 0 {
			queuedLooks.Add(1)
		}
		if got := tb.rrHas(t, prefixes); len(got) != len(prefixes) {
			lost = got
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("busy HAProxy: %d requests served in 4 s, accept queue non-empty in %d looks", served.Load(), queuedLooks.Load())
	if lost != nil {
		t.Errorf("a busy HAProxy was withdrawn: the route reflector had %v", lost)
	}
	if queuedLooks.Load() < 10 {
		t.Errorf("the accept queue held connections in only %d looks: the load did not make HAProxy stop accepting", queuedLooks.Load())
	}
	out := a.proc.Output()
	if !logHas(out, `msg="accept queue not draining, HAProxy answers: busy"`, "vip="+busy.Name) {
		t.Errorf("the agent never asked the busy HAProxy's runtime API:\n%s", lastLines(out, 30))
	}
	if strings.Contains(out, "HAProxy hung") {
		t.Errorf("the agent took the busy HAProxy for a hung one:\n%s", lastLines(out, 30))
	}
	if st := vipStatus(t, a.status(t), busy.Name); st.Transitions != before || !st.Announced {
		t.Errorf("busy VIP: %d transitions before the load, now %+v", before, st)
	}
}

// logHas reports whether one line of the agent's log has every part.
func logHas(log string, parts ...string) bool {
	for _, l := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// get sends GET / to addr from inside the LB namespace and reports whether
// an answer came within 3 s.
func get(tb *testbed, addr netip.AddrPort) bool {
	var conn net.Conn
	if err := tb.lb.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", addr.String(), 3*time.Second)
		return err
	}); err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
