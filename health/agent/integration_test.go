package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bpf"
	"github.com/lbctl/lbctl/bundle/intent"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/node/target"
)

// TestAgentInsideHelper is the agent process of the integration tests: they
// re-execute this test binary inside the LB namespace with the node
// configuration file in LBCTL_AGENT_HELPER_CONFIG. It wires the agent as
// `lbctl agent` does (sock_diag listing, eBPF events with the sock_diag
// fallback, BIRD announcer, control socket, metrics) minus systemd, which the
// testbed does not run, and runs until SIGTERM.
func TestAgentInsideHelper(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper: runs the agent inside a test namespace when started by the integration tests")
	}
	if err := runAgentLikeLbctl(path); err != nil {
		t.Fatal(err)
	}
}

func runAgentLikeLbctl(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "agent")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return setup.RunAgent(ctx, cfg, nil, log)
}

// The VIP of the integration tests: one HAProxy frontend on both addresses.
var webVIP = health.VIP{
	Name:      "web",
	Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
	Probes: []health.Probe{
		{Kind: health.ProbeHTTP, Addr: netip.MustParseAddrPort("192.0.2.10:80"), Host: "www.example.org", Path: "/"},
		{Kind: health.ProbeHTTP, Addr: netip.MustParseAddrPort("[2001:db8::10]:80"), Host: "www.example.org", Path: "/"},
	},
}

const webHAProxy = `global
  nbthread 1
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend web
  bind 192.0.2.10:80
  bind [2001:db8::10]:80
  http-request return status 200 content-type text/plain string ok
`

// webTestbed is the testbed with the web VIP announceable, HAProxy serving
// it and the agent running; it returns once the VIP's routes are at the
// route reflector.
func webTestbed(t *testing.T, o agentOptions) (*testbed, *haproxy, *agentProc, *release.Store) {
	t.Helper()
	tb := newTestbed(t, webVIP.Addresses)
	store, err := release.Open(filepath.Join(tb.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{webVIP}}); err != nil {
		t.Fatal(err)
	}
	h := newHAProxy(t, tb, webHAProxy)
	h.start(t, health.Expected(&webVIP))
	a := startAgent(t, tb, store.Root, o)
	all := hostPrefixes(webVIP)
	tb.waitRR(t, all, all, 5*time.Second)
	return tb, h, a, store
}

// ebpfUsable reports whether this process can load the eBPF probes.
func ebpfUsable(t *testing.T) bool {
	p, err := bpf.Load()
	if err != nil {
		t.Logf("eBPF probes do not load here (%v): the agent polls", err)
		return false
	}
	p.Close()
	return true
}

// TestIntegrationAgent runs the agent inside an LB namespace with HAProxy
// and BIRD, iBGP to a route reflector in a second namespace, and checks what
// the route reflector sees: the healthy VIP announced, withdrawn when its
// HAProxy is killed, back after the rise count when it restarts, withdrawn
// while drained (HAProxy still serving), back when undrained, withdrawn when
// the agent stops. Then it measures the failover latency over 20 kills.
//
// BGP runs without BFD here: on a loaded 2-vCPU VM a BIRD not scheduled for
// 300 ms trips BFD (100 ms x 3) and tears the session down mid-test. How BFD
// withdraws a frozen node does not involve the agent; health/bird's
// TestIntegrationFrozenNode measures it.
func TestIntegrationAgent(t *testing.T) {
	needTestbed(t)
	withEBPF := ebpfUsable(t)
	tb, h, a, store := webTestbed(t, agentOptions{metrics: "127.0.0.1:9842"})
	ctx := context.Background()
	all := hostPrefixes(webVIP)

	st := a.status(t)
	if withEBPF && st.Probe != "ebpf" {
		t.Errorf("agent's probe is %q, want ebpf", st.Probe)
	}
	if vs := vipStatus(t, st, "web"); !vs.Healthy || !vs.Announced || vs.Drained {
		t.Errorf("web: %+v, want healthy, announced, not drained", vs)
	}
	t.Logf("agent probe: %s; announced %v", st.Probe, st.Announced)

	// SIGKILL of HAProxy: both routes leave the route reflector.
	start := time.Now()
	h.kill(t)
	d := tb.waitRR(t, all, nil, 5*time.Second)
	t.Logf("HAProxy killed: both routes gone at the route reflector after %v", time.Since(start).Round(time.Microsecond))
	// With eBPF the listener-close event withdraws it, not a failing probe
	// (how fast is a benchmark figure, never a pass/fail target here).
	if withEBPF && !strings.Contains(a.proc.Output(), "listener closed, withdrawing") {
		t.Errorf("withdrawn %v after the kill, but not by a listener-close event (agent log: %s)", d, lastLines(a.proc.Output(), 20))
	}
	if vs := vipStatus(t, a.status(t), "web"); vs.Healthy || vs.Announced || len(vs.Reasons) == 0 {
		t.Errorf("web after kill: %+v, want unhealthy with a reason", vs)
	}

	// Restart: back after Rise passing evaluations, the later ones
	// FastInterval apart, so never sooner than (Rise-1)*FastInterval.
	start = time.Now()
	h.start(t, health.Expected(&webVIP))
	tb.waitRR(t, all, all, 5*time.Second)
	back := time.Since(start)
	t.Logf("HAProxy restarted: routes back at the route reflector after %v (rise %d, fast interval %v)", back.Round(time.Millisecond), agentRise, agentFastInterval)
	if min := time.Duration(agentRise-1) * agentFastInterval; back < min {
		t.Errorf("routes back %v after the restart, before the rise count (%d evaluations, >= %v)", back, agentRise, min)
	}

	// Drain: withdrawn, while HAProxy keeps serving.
	if err := store.WriteDrains(health.Drains{VIPs: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	st, err := a.client.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if vs := vipStatus(t, st, "web"); !vs.Drained || vs.Announced || !vs.Healthy {
		t.Errorf("web after drain: %+v, want drained, healthy, not announced", vs)
	}
	d = tb.waitRR(t, all, nil, 2*time.Second)
	t.Logf("drained: routes gone at the route reflector %v after the reload returned", d.Round(time.Microsecond))
	for _, p := range webVIP.Probes {
		if code := tb.get(t, p.Addr, p.Host); code != http.StatusOK {
			t.Errorf("drained VIP: GET %s answered %d, want 200 (HAProxy keeps serving)", p.Addr, code)
		}
	}
	// Undrain: back at once (the VIP stayed healthy).
	if err := store.WriteDrains(health.Drains{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	d = tb.waitRR(t, all, all, 2*time.Second)
	t.Logf("undrained: routes back at the route reflector %v after the reload returned", d.Round(time.Microsecond))

	// Failover latency: SIGKILL to 192.0.2.10/32 gone from the route
	// reflector's master4, polled every millisecond.
	time.Sleep(failoverSettle)
	lat := failover(t, tb, h, a, 20, failoverSettle)
	t.Logf("failover with listener events, SIGKILL -> gone at RR: %s", fmtLatencies(lat))
	t.Logf("  per trial: %v", lat)
	// The target (p95 under 20 ms) is a benchmark figure on a quiet
	// machine; what must hold even on a busy one is that every withdrawal
	// comes from a listener event (the first kill above and each trial),
	// not from failing probes.
	if n := strings.Count(a.proc.Output(), "listener closed, withdrawing"); withEBPF && n < 1+len(lat) {
		t.Errorf("%d withdrawals by a listener-close event for %d kills: the others were not event-driven", n, 1+len(lat))
	}

	// Clean shutdown withdraws every route.
	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := a.proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("agent after SIGTERM: %v\n%s", err, a.proc.Output())
	}
	exited := time.Since(start)
	if got := tb.rrHas(t, all); len(got) > 0 {
		// The agent verified BIRD's tables before exiting; BGP needs a moment more.
		d = tb.waitRR(t, all, nil, 2*time.Second)
		t.Logf("agent stopped in %v; routes gone at the route reflector %v later", exited.Round(time.Microsecond), d.Round(time.Microsecond))
	} else {
		t.Logf("agent stopped in %v; routes already gone at the route reflector", exited.Round(time.Microsecond))
	}
	if out := a.proc.Output(); !strings.Contains(out, "withdrawing every route on shutdown") {
		t.Errorf("agent did not log its shutdown withdrawal:\n%s", lastLines(out, 20))
	}
	for _, f := range []string{"announce4.conf", "announce6.conf"} {
		b, err := os.ReadFile(filepath.Join(tb.includeDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "route ") {
			t.Errorf("%s still announces after shutdown:\n%s", f, b)
		}
	}
}

// failoverSettle is how long the failover trials wait after the routes are
// back before the next kill.
const failoverSettle = 300 * time.Millisecond

// failover kills HAProxy n times and returns, per trial, the time from the
// kill to 192.0.2.10/32 gone from the route reflector's master4 table
// (polled every millisecond). Between trials it restarts HAProxy, waits for
// both routes to come back and then for settle plus a random part of the
// poll interval: a BGP update sent within ~40 ms of the previous one waits
// for the route reflector's delayed ACK (Nagle on BIRD's socket; see the
// BIRD section of docs/BENCHMARKS.md), which a VIP that has been up for a
// while does not see.
func failover(t *testing.T, tb *testbed, h *haproxy, a *agentProc, n int, settle time.Duration) []time.Duration {
	t.Helper()
	all := hostPrefixes(webVIP)
	v4 := netip.MustParsePrefix("192.0.2.10/32")
	var out, decided []time.Duration
	kills := make([]time.Time, 0, n)
	for range n {
		if got := tb.rrHas(t, all); len(got) != len(all) {
			t.Fatalf("before a trial the route reflector has %v, want %v; LB BIRD protocols: %s", got, all, tb.protocols(t))
		}
		if err := h.proc.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		kills = append(kills, start)
		out = append(out, tb.waitGone4(t, v4, start, time.Millisecond, 5*time.Second))
		h.proc.Wait(5 * time.Second)
		h.startNoWait(t)
		tb.waitRR(t, all, all, 10*time.Second)
		// A random pause, so kills do not fall at a fixed phase of the
		// agent's poll timer or of BGP keepalives.
		time.Sleep(settle + rand.N(agentInterval))
	}
	// The agent logs each decision to withdraw (millisecond timestamps).
	downs := withdrawDecisions(a.proc.Output())
	if len(downs) >= n {
		downs = downs[len(downs)-n:]
		var rest []time.Duration
		for i := range n {
			decided = append(decided, downs[i].Sub(kills[i]))
			rest = append(rest, out[i]-decided[i])
		}
		t.Logf("  SIGKILL -> agent decides to withdraw (its log, ms resolution): %s", fmtLatencies(decided))
		t.Logf("  decision -> gone at RR (announcer, BIRD, BGP, 1 ms poll):      %s", fmtLatencies(rest))
	} else {
		t.Errorf("agent logged %d withdrawal decisions for %d kills", len(downs), n)
	}
	return out
}

// withdrawDecisions returns the times at which the agent logged that it
// marked the web VIP down: a listener-close event, or Fall failed polls.
func withdrawDecisions(log string) []time.Time {
	var out []time.Time
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "vip=web") || !(strings.Contains(l, `msg="listener closed, withdrawing"`) || strings.Contains(l, "healthy=false")) {
			continue
		}
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time=")); err == nil {
			out = append(out, at)
		}
	}
	return out
}

// benchEnv enables the slow measurements: failover with polling only, and
// the agent's idle footprint over 60 s.
const benchEnv = "LBCTL_AGENT_BENCH"

func needBench(t *testing.T) {
	t.Helper()
	if os.Getenv(benchEnv) == "" {
		t.Skipf("slow measurement: set %s=1 to run it", benchEnv)
	}
	needTestbed(t)
}

// TestIntegrationFailoverPolling measures the failover latency with eBPF
// unavailable (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN dropped): the agent
// falls back to sock_diag polling, says so in its status, and withdraws
// after Fall failed evaluations. Set LBCTL_AGENT_BENCH=1.
func TestIntegrationFailoverPolling(t *testing.T) {
	needBench(t)
	tb, h, a, _ := webTestbed(t, agentOptions{noBPF: true})
	st := a.status(t)
	if !strings.HasPrefix(st.Probe, "sock_diag polling (eBPF unavailable") {
		t.Fatalf("agent's probe is %q, want the sock_diag fallback", st.Probe)
	}
	t.Logf("agent probe: %s", st.Probe)
	time.Sleep(failoverSettle)
	lat := failover(t, tb, h, a, 20, failoverSettle)
	t.Logf("failover with sock_diag polling (interval %v, fast interval %v, fall %d), SIGKILL -> gone at RR: %s",
		agentInterval, agentFastInterval, agentFall, fmtLatencies(lat))
	t.Logf("  per trial: %v", lat)
	if p50, _, _ := latencies(lat); p50 < time.Duration(agentFall-1)*agentFastInterval {
		t.Errorf("failover p50 %v while polling: faster than Fall evaluations allow; were events used?", p50)
	}
}

// TestIntegrationFootprint runs the agent with every VIP of examples/campus
// announceable (8 VIPs, their probes from node/target), all healthy behind
// one HAProxy, and measures its resident memory and CPU over 60 s idle.
// Set LBCTL_AGENT_BENCH=1.
func TestIntegrationFootprint(t *testing.T) {
	needBench(t)
	ctx := context.Background()
	site, err := intent.Resolve(ctx, filepath.Join("..", "..", "examples", "campus"), intent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var vips []health.VIP
	var addrs []netip.Addr
	probes := 0
	for i := range site.VIPs {
		mv := &site.VIPs[i]
		v := health.VIP{Name: mv.Name, Probes: target.Probes(site, mv)}
		for _, s := range mv.Addresses {
			v.Addresses = append(v.Addresses, s)
		}
		addrs = append(addrs, v.Addresses...)
		probes += len(v.Probes)
		vips = append(vips, v)
	}
	tb := newTestbed(t, addrs)
	cert := filepath.Join(tb.dir, "campus.pem")
	selfSigned(t, cert)
	h := newHAProxy(t, tb, campusHAProxy(vips, cert))
	var listeners []netip.AddrPort
	for i := range vips {
		listeners = append(listeners, health.Expected(&vips[i])...)
	}
	h.start(t, listeners)
	store, err := release.Open(filepath.Join(tb.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.WriteAnnounceable(health.Announceable{VIPs: vips}); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, tb, store.Root, agentOptions{metrics: "127.0.0.1:9842"})
	all := hostPrefixes(vips...)
	tb.waitRR(t, all, all, 10*time.Second)
	st := a.status(t)
	t.Logf("agent (%s) announces %d prefixes of %d VIPs with %d probes and %d listeners", st.Probe, len(all), len(vips), probes, len(listeners))
	time.Sleep(2 * time.Second)

	const idle = 60 * time.Second
	cpu0, rss0 := procUsage(t, a.proc.PID)
	start := time.Now()
	maxRSS := rss0
	for time.Since(start) < idle {
		time.Sleep(5 * time.Second)
		_, rss := procUsage(t, a.proc.PID)
		maxRSS = max(maxRSS, rss)
	}
	cpu1, rss1 := procUsage(t, a.proc.PID)
	elapsed := time.Since(start)
	share := float64(cpu1-cpu0) / float64(elapsed)
	hwm := procStatusKB(t, a.proc.PID, "VmHWM")
	t.Logf("agent footprint over %v idle: CPU %v = %.3f%% of a core; VmRSS %.1f MB at start, %.1f MB at end, max %.1f MB sampled, VmHWM %.1f MB",
		elapsed.Round(time.Millisecond), cpu1-cpu0, 100*share, mb(rss0), mb(rss1), mb(maxRSS), mb(hwm))
	if got := tb.rrHas(t, all); len(got) != len(all) {
		t.Errorf("after the idle minute the route reflector has %d of %d prefixes", len(got), len(all))
	}
	for _, v := range a.status(t).VIPs {
		if !v.Announced || v.Transitions != 1 {
			t.Errorf("VIP %s: %+v; want announced once, no flaps", v.Name, v)
		}
	}
	if mb(maxRSS) >= 40 {
		t.Errorf("agent RSS %.1f MB, target under 40 MB", mb(maxRSS))
	}
	if share >= 0.01 {
		t.Errorf("agent CPU %.3f%% of a core, target under 1%%", 100*share)
	}
}

func mb(kb uint64) float64 { return float64(kb) / 1024 }

// procUsage returns a process's user+system CPU time and VmRSS (kB).
func procUsage(t *testing.T, pid int) (time.Duration, uint64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may contain spaces): state is
	// field 3, utime 14, stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	const clkTck = 100 // USER_HZ on Linux
	cpu := time.Duration(utime+stime) * time.Second / clkTck
	return cpu, procStatusKB(t, pid, "VmRSS")
}

func procStatusKB(t *testing.T, pid int, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status %s: %q", pid, field, l)
			}
			return kb
		}
	}
	t.Fatalf("/proc/%d/status: no %s", pid, field)
	return 0
}

// campusHAProxy is one HAProxy configuration that passes every probe of the
// VIPs: a frontend per probed listener, answering 200 (or a redirect where
// the probe expects one), terminating TLS with cert where the probe speaks
// TLS, and accepting plain TCP connections.
func campusHAProxy(vips []health.VIP, cert string) string {
	var b strings.Builder
	b.WriteString("global\n  nbthread 1\ndefaults\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n")
	for _, v := range vips {
		for i, p := range v.Probes {
			fmt.Fprintf(&b, "frontend %s-%d\n", v.Name, i)
			ssl := ""
			if p.TLS || p.Kind == health.ProbeTLS {
				ssl = " ssl crt " + cert
			}
			fmt.Fprintf(&b, "  bind %s%s\n", p.Addr, ssl)
			switch {
			case p.Kind == health.ProbeHTTP && p.RedirectOnly:
				b.WriteString("  mode http\n  http-request redirect scheme https\n")
			case p.Kind == health.ProbeHTTP:
				b.WriteString("  mode http\n  http-request return status 200\n")
			default:
				b.WriteString("  mode tcp\n  tcp-request content reject\n")
			}
		}
	}
	return b.String()
}
