package agent_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	renderhaproxy "github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/release"
)

// A site of n VIPs as a node runs them: one HAProxy per VIP (here in the
// foreground, not under systemd, which the testbed does not run), each with
// its admin socket where the agent looks for it, an HTTP frontend on the
// VIP's address and a backend the agent counts servers of.

// siteVIP is one VIP of the site and its HAProxy.
type siteVIP struct {
	vip health.VIP
	h   *haproxy
}

// vipAddr returns the address of the i-th VIP: 192.0.2.1-250, then
// 203.0.113.1-250.
func vipAddr(i int) netip.Addr {
	if i < 250 {
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(i - 250 + 1)})
}

// siteOptions shape the site's HAProxy configurations.
type siteOptions struct {
	// frontendExtra is added to every frontend (e.g. "maxconn 4").
	frontendExtra string
	// server is the backend server address; "" serves 200 from HAProxy.
	server string
	// check is added to the server line (e.g. " check inter 100ms").
	check string
	// noEvents leaves out the log lines that send HAProxy's state changes
	// to the agent (a release rendered before them).
	noEvents bool
}

// siteHAProxy is the configuration of one VIP's HAProxy.
func siteHAProxy(v health.VIP, runDir string, o siteOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  nbthread 1\n  stats socket %s mode 600 level admin\n", renderhaproxy.AdminSocket(runDir, v.Name))
	if v.Events {
		// As bundle/render/haproxy writes them: state changes to the agent.
		fmt.Fprintf(&b, "  log unix@%s len 1024 format rfc5424 local0 notice\n  log-tag %s\n", renderhaproxy.EventsSocket(runDir), v.Name)
	}
	b.WriteString("defaults\n  log global\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n")
	fmt.Fprintf(&b, "frontend fe\n  bind %s\n", v.Probes[0].Addr)
	if o.frontendExtra != "" {
		fmt.Fprintf(&b, "  %s\n", o.frontendExtra)
	}
	server := o.server
	if server == "" {
		b.WriteString("  http-request return status 200 content-type text/plain string ok if { path / }\n")
		server = "127.0.0.1:9"
	}
	fmt.Fprintf(&b, "  default_backend be\nbackend be\n  server s1 %s%s\n", server, o.check)
	return b.String()
}

// newSite builds the testbed with n VIPs, starts their HAProxies and
// writes the announceable set; it does not start the agent.
func newSite(t *testing.T, n int, o siteOptions) (*testbed, []*siteVIP, *release.Store) {
	t.Helper()
	tb := newTestbed(t, nil)
	vips, store := newSiteOn(t, tb, n, o)
	return tb, vips, store
}

// newSiteOn is newSite on an existing testbed without VIP addresses.
func newSiteOn(t *testing.T, tb *testbed, n int, o siteOptions) ([]*siteVIP, *release.Store) {
	t.Helper()
	vips := make([]*siteVIP, n)
	addrs := make([]netip.Addr, n)
	for i := range n {
		a := vipAddr(i)
		addrs[i] = a
		vips[i] = &siteVIP{vip: health.VIP{
			Name:      fmt.Sprintf("v%03d", i),
			Addresses: []netip.Addr{a},
			Probes:    []health.Probe{{Kind: health.ProbeHTTP, Addr: netip.AddrPortFrom(a, 80), Host: "www.example.org", Path: "/"}},
			Backends:  []health.Backend{{Name: "be", MinUp: 1}},
			Events:    !o.noEvents,
		}}
	}
	// One ip -batch for every address: n execs of ip take seconds.
	var batch strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&batch, "address add %s/32 dev lo\n", a)
	}
	bf := filepath.Join(tb.dir, "addrs.batch")
	writeFile(t, bf, batch.String())
	tb.lb.Exec(t, "ip", "-batch", bf)
	runDir := filepath.Join(tb.dir, "run")
	for _, sv := range vips {
		mkdir(t, filepath.Dir(renderhaproxy.AdminSocket(runDir, sv.vip.Name)))
		conf := filepath.Join(tb.dir, sv.vip.Name+".cfg")
		writeFile(t, conf, siteHAProxy(sv.vip, runDir, o))
		sv.h = &haproxy{tb: tb, conf: conf}
	}
	// Start them all, then wait for each: starting one at a time and
	// waiting costs n round trips of HAProxy's start-up.
	for _, sv := range vips {
		sv.h.startNoWait(t)
	}
	for _, sv := range vips {
		sv.h.waitListening(t, 30*time.Second, health.Expected(&sv.vip))
	}
	store, err := release.Open(filepath.Join(tb.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	ann := health.Announceable{}
	for _, sv := range vips {
		ann.VIPs = append(ann.VIPs, sv.vip)
	}
	if err := store.WriteAnnounceable(ann); err != nil {
		t.Fatal(err)
	}
	return vips, store
}

// waitListening waits up to timeout until HAProxy accepts on every
// address, and fails the test if HAProxy exits meanwhile.
func (h *haproxy) waitListening(t *testing.T, timeout time.Duration, addrs []netip.AddrPort) {
	t.Helper()
	waitUntil(t, timeout, "haproxy listening", func() bool {
		for _, a := range addrs {
			if err := h.tb.lb.Do(func() error {
				c, err := net.DialTimeout("tcp", a.String(), time.Second)
				if err == nil {
					c.Close()
				}
				return err
			}); err != nil {
				select {
				case <-h.proc.Done():
					t.Fatalf("haproxy exited: %s", h.proc.Output())
				default:
				}
				return false
			}
		}
		return true
	})
}

// scaleVIPs is the number of VIPs TestIntegrationScale runs (default 150).
func scaleVIPs(t *testing.T) int {
	n := 150
	if s := os.Getenv("LBCTL_AGENT_SCALE_VIPS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 2 || n > 500 {
			t.Fatalf("LBCTL_AGENT_SCALE_VIPS=%q: want 2..500", s)
		}
	}
	return n
}

// TestIntegrationScale measures the agent at N VIPs (LBCTL_AGENT_SCALE_VIPS,
// default 150; one HAProxy per VIP, each probed over HTTP and asked for its
// backend's servers): time until all are announced, idle CPU and RSS, the
// SIGKILL failover and re-announce of 20 VIPs, a SIGSTOPped HAProxy with a
// client connecting, and a SIGKILL while another VIP is frozen. Set
// LBCTL_AGENT_BENCH=1. LBCTL_AGENT_CPUPROFILE=FILE runs the agent as this
// test binary (TestAgentInsideHelper) with -test.cpuprofile=FILE.
func TestIntegrationScale(t *testing.T) {
	needBench(t)
	n := scaleVIPs(t)
	tb, vips, store := newSite(t, n, siteOptions{})
	lbctlBinary(t) // built before the clock starts
	start := time.Now()
	a := startAgent(t, tb, store.Root, agentOptions{cpuprofile: os.Getenv("LBCTL_AGENT_CPUPROFILE")})
	var all []health.VIP
	for _, sv := range vips {
		all = append(all, sv.vip)
	}
	prefixes := hostPrefixes(all...)
	tb.waitRR(t, prefixes, prefixes, 60*time.Second)
	t.Logf("scale %d VIPs: agent (%s) started, all %d routes at the route reflector after %v",
		n, a.status(t).Probe, len(prefixes), time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second)

	idle := 30 * time.Second
	if s := os.Getenv("LBCTL_AGENT_SCALE_IDLE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		idle = d
	}
	evals := func() int {
		n := 0
		for _, v := range a.status(t).VIPs {
			n += v.Evaluations
		}
		return n
	}
	e0 := evals()
	sw0 := ctxSwitches(t, a.proc.PID)
	cpu0, rss0 := procUsage(t, a.proc.PID)
	t0 := time.Now()
	maxRSS := rss0
	for time.Since(t0) < idle {
		time.Sleep(time.Second)
		_, rss := procUsage(t, a.proc.PID)
		maxRSS = max(maxRSS, rss)
	}
	cpu1, _ := procUsage(t, a.proc.PID)
	sw1 := ctxSwitches(t, a.proc.PID)
	el := time.Since(t0)
	share := float64(cpu1-cpu0) / float64(el)
	rate := float64(evals()-e0) / el.Seconds()
	t.Logf("scale %d VIPs: agent idle over %v: CPU %.2f%% of a core, RSS max %.1f MB, %.0f evaluations/s, %.0f context switches/s, %d threads; %d busy-queue checks so far; load %s",
		n, idle, 100*share, mb(maxRSS), rate, float64(sw1-sw0)/el.Seconds(), threads(t, a.proc.PID),
		strings.Count(a.proc.Output(), "HAProxy answers: busy"), loadAvg())
	if os.Getenv("LBCTL_AGENT_SCALE_IDLE_ONLY") != "" {
		stopAgent(t, a)
		return
	}

	// SIGKILL of 20 different VIPs' HAProxy, one at a time: route gone at
	// the route reflector, then restart and route back.
	var gone, back []time.Duration
	for i := range min(20, n) {
		sv := vips[(i*7)%n]
		p := netip.PrefixFrom(sv.vip.Addresses[0], 32)
		if err := sv.h.proc.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		k := time.Now()
		gone = append(gone, tb.waitGone4(t, p, k, time.Millisecond, 10*time.Second))
		sv.h.proc.Wait(5 * time.Second)
		r := time.Now()
		sv.h.startNoWait(t)
		tb.waitRR(t, []netip.Prefix{p}, []netip.Prefix{p}, 20*time.Second)
		back = append(back, time.Since(r))
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("scale %d VIPs: failover SIGKILL -> gone at RR: %s", n, fmtLatencies(gone))
	t.Logf("scale %d VIPs: HAProxy restarted -> announced again at RR: %s (rise %d, fast interval %v)", n, fmtLatencies(back), agentRise, agentFastInterval)

	// A frozen HAProxy with a client connecting every 20 ms.
	frozen := vips[1]
	fp := netip.PrefixFrom(frozen.vip.Addresses[0], 32)
	stopClient := connectLoop(t, tb, frozen.vip.Probes[0].Addr, 20*time.Millisecond, 10*time.Second)
	if err := frozen.h.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	k := time.Now()
	d := tb.waitGone4(t, fp, k, time.Millisecond, 15*time.Second)
	stopClient()
	t.Logf("scale %d VIPs: HAProxy SIGSTOPped with a client connecting -> gone at RR after %v", n, d.Round(10*time.Microsecond))
	// With it still frozen (its evaluations hang until their deadline),
	// SIGKILL five other VIPs' HAProxy, one at a time.
	var others []time.Duration
	for i := range min(5, n-2) {
		other := vips[2+i*(n-2)/5]
		op := netip.PrefixFrom(other.vip.Addresses[0], 32)
		time.Sleep(rand.N(agentInterval))
		if err := other.h.proc.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		k := time.Now()
		others = append(others, tb.waitGone4(t, op, k, time.Millisecond, 10*time.Second))
		other.h.proc.Wait(5 * time.Second)
		other.h.startNoWait(t)
		tb.waitRR(t, []netip.Prefix{op}, []netip.Prefix{op}, 20*time.Second)
	}
	t.Logf("scale %d VIPs: with one VIP frozen, SIGKILL of another -> gone at RR: %s", n, fmtLatencies(others))
	frozen.h.proc.Signal(syscall.SIGCONT)
	tb.waitRR(t, []netip.Prefix{fp}, []netip.Prefix{fp}, 20*time.Second)

	stopAgent(t, a)
}

// stopAgent stops the agent cleanly (SIGTERM), so that a CPU profile is
// written.
func stopAgent(t *testing.T, a *agentProc) {
	t.Helper()
	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.proc.Wait(20 * time.Second); err != nil {
		t.Errorf("agent after SIGTERM: %v", err)
	}
}

// ctxSwitches sums the voluntary and involuntary context switches of every
// thread of a process: how often it was woken or preempted.
func ctxSwitches(t *testing.T, pid int) uint64 {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		for _, l := range strings.Split(string(b), "\n") {
			for _, f := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if rest, ok := strings.CutPrefix(l, f); ok {
					v, _ := strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
					n += v
				}
			}
		}
	}
	return n
}

// threads returns a process's thread count.
func threads(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}

// loadAvg is the machine's load average (the figures are taken on a shared
// machine).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// connectLoop connects to addr from inside the LB namespace every period
// and leaves each connection open until stop (or for), a bounded client:
// at most for/period connections. It returns stop.
func connectLoop(t *testing.T, tb *testbed, addr netip.AddrPort, period, maxFor time.Duration) func() {
	t.Helper()
	done := make(chan struct{})
	finished := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(finished)
		end := time.After(maxFor)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-end:
				return
			case <-tick.C:
			}
			_ = tb.lb.Do(func() error {
				c, err := net.DialTimeout("tcp", addr.String(), period)
				if err == nil {
					conns = append(conns, c)
				}
				return nil
			})
		}
	}()
	stop := func() {
		select {
		case <-done:
		default:
			close(done)
		}
		<-finished
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(stop)
	return stop
}
