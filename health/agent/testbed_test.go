package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/health/bird/birdtest"
	"github.com/lbctl/lbctl/internal/testcert"
	"github.com/lbctl/lbctl/test/netnstest"
)

// The integration tests build this testbed: two fresh network namespaces
// joined by a veth pair (198.51.100.0/24, 2001:db8:100::/64). The LB
// namespace holds the VIP addresses on lo, HAProxy, a BIRD with the static
// protocols vips4/vips6 fed from the agent's include files and iBGP to the
// route reflector, and the agent itself; the route reflector
// namespace holds a BIRD with "rr client" and a direct protocol (without it
// the iBGP next hop does not resolve). Every process is started inside its
// namespace by netnstest and killed by PID in cleanup.

const (
	birdBinary    = "/usr/sbin/bird"
	haproxyBinary = "/usr/sbin/haproxy"
)

// needTestbed skips unless the testbed can be built.
func needTestbed(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and runs bird, haproxy and the agent in them")
	}
	for _, b := range []string{birdBinary, haproxyBinary} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("needs %s (Debian packages bird2 and haproxy): %v", b, err)
		}
	}
	netnstest.RequireRoot(t)
}

type testbed struct {
	dir    string
	lb, rr *netnstest.NS
	link   netnstest.Link
	// lbBird and rrBird are the two BIRDs; lbSock and rrSock their control
	// sockets. includeDir holds announce4.conf and announce6.conf.
	lbBird, rrBird     *netnstest.Proc
	lbSock, rrSock     string
	includeDir         string
	rrClient, lbClient *bird.Client
}

// newTestbed builds both namespaces with the given VIP addresses on the LB's
// lo and both BIRDs, and waits for the BGP session.
func newTestbed(t *testing.T, vips []netip.Addr) *testbed {
	t.Helper()
	tb := &testbed{dir: t.TempDir()}
	tb.lb = netnstest.New(t, "agent-lb")
	tb.rr = netnstest.New(t, "agent-rr")
	tb.link = netnstest.Veth(t, tb.lb, "198.51.100.1/24,2001:db8:100::1/64", tb.rr, "198.51.100.2/24,2001:db8:100::2/64")
	for _, a := range vips {
		tb.lb.AddAddr(t, "lo", netip.PrefixFrom(a, a.BitLen()).String())
	}
	tb.includeDir = filepath.Join(tb.dir, "bird-include")
	lbDir, rrDir := filepath.Join(tb.dir, "bird-lb"), filepath.Join(tb.dir, "bird-rr")
	for _, d := range []string{tb.includeDir, lbDir, rrDir} {
		mkdir(t, d)
	}
	// BIRD refuses to start when an included file is missing.
	writeFile(t, filepath.Join(tb.includeDir, "announce4.conf"), string(bird.RenderInclude(nil)))
	writeFile(t, filepath.Join(tb.includeDir, "announce6.conf"), string(bird.RenderInclude(nil)))
	lbConf := birdtest.Announcer("198.51.100.1", filepath.Join(lbDir, "bird.log"), "198.51.100.2", 65000,
		birdtest.Include(filepath.Join(tb.includeDir, "announce4.conf")), birdtest.Include(filepath.Join(tb.includeDir, "announce6.conf")))
	rrConf := birdtest.Config{RouterID: "198.51.100.2", Log: filepath.Join(rrDir, "bird.log"), Direct: tb.link.B,
		Sessions: []birdtest.Session{birdtest.ReflectorClient("lb1", "", "198.51.100.2", "198.51.100.1", 65000)}}
	writeFile(t, filepath.Join(lbDir, "bird.conf"), lbConf.String())
	writeFile(t, filepath.Join(rrDir, "bird.conf"), rrConf.String())
	tb.rrSock, tb.rrBird = startBird(t, tb.rr, rrDir)
	tb.lbSock, tb.lbBird = startBird(t, tb.lb, lbDir)
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range []string{lbDir, rrDir} {
				log, _ := os.ReadFile(filepath.Join(d, "bird.log"))
				t.Logf("%s:\n%s", d, lastLines(string(log), 40))
			}
		}
	})
	tb.rrClient = birdtest.Client(t, tb.rrSock)
	tb.lbClient = birdtest.Client(t, tb.lbSock)
	tb.waitEstablished(t, 15*time.Second)
	return tb
}

func startBird(t *testing.T, ns *netnstest.NS, dir string) (string, *netnstest.Proc) {
	t.Helper()
	sock := filepath.Join(dir, "bird.ctl")
	p := ns.Start(t, birdBinary, "-f", "-c", filepath.Join(dir, "bird.conf"), "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	if err := birdtest.WaitSocket(sock, 5*time.Second); err != nil {
		t.Fatalf("bird in %s: %v", ns.Name, err)
	}
	return sock, p
}

func (tb *testbed) waitEstablished(t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := birdtest.WaitEstablished(context.Background(), timeout, tb.lbClient, tb.rrClient); err != nil {
		t.Fatal(err)
	}
}

// protocols describes the LB BIRD's protocols (for failure messages: a
// session that went down shows there).
func (tb *testbed) protocols(t *testing.T) string {
	t.Helper()
	ps, err := tb.lbClient.Protocols(context.Background())
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%+v", ps)
}

// rrHas reports which of the prefixes the route reflector's master4 and
// master6 tables hold.
func (tb *testbed) rrHas(t *testing.T, prefixes []netip.Prefix) []netip.Prefix {
	t.Helper()
	var got []netip.Prefix
	for _, table := range []string{"master4", "master6"} {
		ps, err := tb.rrClient.Table(context.Background(), table)
		if err != nil {
			t.Fatalf("route reflector table %s: %v", table, err)
		}
		got = append(got, ps...)
	}
	var out []netip.Prefix
	for _, p := range prefixes {
		if slices.Contains(got, p) {
			out = append(out, p)
		}
	}
	return out
}

// waitRR polls the route reflector's tables every millisecond until exactly
// the prefixes in want (of those in all) are present; it returns how long
// that took.
func (tb *testbed) waitRR(t *testing.T, all, want []netip.Prefix, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := tb.rrHas(t, all)
		if slices.Equal(got, want) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("route reflector has %v of %v after %v, want %v", got, all, timeout, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitGone4 polls the route reflector's master4 table every pollEvery until
// p is gone and returns the time since start.
func (tb *testbed) waitGone4(t *testing.T, p netip.Prefix, start time.Time, pollEvery, timeout time.Duration) time.Duration {
	t.Helper()
	for {
		ps, err := tb.rrClient.Table(context.Background(), "master4")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(ps, p) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s still at the route reflector %v after the kill", p, timeout)
		}
		time.Sleep(pollEvery)
	}
}

// haproxy is one HAProxy running in the foreground (-db) in the LB namespace.
type haproxy struct {
	tb   *testbed
	conf string
	proc *netnstest.Proc
}

func newHAProxy(t *testing.T, tb *testbed, conf string) *haproxy {
	t.Helper()
	path := filepath.Join(tb.dir, "haproxy.cfg")
	writeFile(t, path, conf)
	if out, err := exec.Command(haproxyBinary, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	return &haproxy{tb: tb, conf: path}
}

// start starts HAProxy and waits until it listens on every address.
func (h *haproxy) start(t *testing.T, addrs []netip.AddrPort) {
	t.Helper()
	h.proc = h.tb.lb.Start(t, haproxyBinary, "-db", "-f", h.conf)
	h.waitListening(t, 5*time.Second, addrs)
}

// startNoWait starts HAProxy and returns at once.
func (h *haproxy) startNoWait(t *testing.T) {
	t.Helper()
	h.proc = h.tb.lb.Start(t, haproxyBinary, "-db", "-f", h.conf)
}

// kill sends SIGKILL and waits until HAProxy is reaped.
func (h *haproxy) kill(t *testing.T) {
	t.Helper()
	if err := h.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := h.proc.Wait(5 * time.Second); err == nil {
		t.Fatal("haproxy exited cleanly after SIGKILL?")
	}
}

// get sends GET / to addr from inside the LB namespace and returns the
// status code. The connection is opened on a thread inside the namespace;
// the request is written by hand so no other goroutine dials.
func (tb *testbed) get(t *testing.T, addr netip.AddrPort, host string) int {
	t.Helper()
	var conn net.Conn
	if err := tb.lb.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr.String(), 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect to %s in %s: %v", addr, tb.lb.Name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// lbctlBinary returns the lbctl binary to run the agent with: the one
// LBCTL_AGENT_BIN names, else one built from this checkout (once per test
// binary). It returns "" (after logging why) when none can be built; the
// agent then runs as TestAgentInsideHelper.
func lbctlBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("LBCTL_AGENT_BIN"); bin != "" {
		return bin
	}
	lbctlOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			lbctlErr = fmt.Errorf("no go tool: %w", err)
			return
		}
		if lbctlDir, err = os.MkdirTemp("", "lbt-agent-lbctl-"); err != nil {
			lbctlErr = err
			return
		}
		bin := filepath.Join(lbctlDir, "lbctl")
		cmd := exec.Command(gobin, "build", "-trimpath", "-o", bin, "./cmd/lbctl")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			lbctlErr = fmt.Errorf("%w\n%s", err, out)
			return
		}
		lbctlBin = bin
	})
	if lbctlErr != nil {
		t.Logf("building lbctl failed (%v): running the agent as TestAgentInsideHelper", lbctlErr)
	}
	return lbctlBin
}

var (
	lbctlOnce          sync.Once
	lbctlBin, lbctlDir string
	lbctlErr           error
)

// TestMain removes the lbctl binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if lbctlDir != "" {
		os.RemoveAll(lbctlDir)
	}
	os.Exit(code)
}

// agentProc is the agent running inside the LB namespace: `lbctl agent`
// (the binary that ships), or, when lbctl cannot be built, this test binary
// re-executed to run TestAgentInsideHelper, which wires the agent the same
// way. Both read the same node configuration file.
type agentProc struct {
	proc   *netnstest.Proc
	client agent.Client
	config string
}

type agentOptions struct {
	// noBPF drops CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, so loading the
	// eBPF probes fails and the agent falls back to sock_diag polling.
	noBPF bool
	// metrics is the Prometheus address inside the LB namespace ("" none).
	metrics string
	// cpuprofile runs the agent as TestAgentInsideHelper with
	// -test.cpuprofile=cpuprofile.
	cpuprofile string
}

const helperEnv = "LBCTL_AGENT_HELPER_CONFIG"

// nodeConfig writes the node configuration the agent reads.
func (tb *testbed) nodeConfig(t *testing.T, stateDir string, metrics string) string {
	t.Helper()
	path := filepath.Join(tb.dir, "lbctl.yaml")
	writeFile(t, path, fmt.Sprintf(`node: lb1
state_dir: %s
runtime_dir: %s
bird:
  socket: %s
  include_dir: %s
agent:
  socket: %s
  metrics: %q
  interval: %s
  fast_interval: %s
  rise: %d
  fall: %d
`, stateDir, filepath.Join(tb.dir, "run"), tb.lbSock, tb.includeDir, filepath.Join(tb.dir, "run", "agent.sock"),
		metrics, agentInterval, agentFastInterval, agentRise, agentFall))
	return path
}

// The agent's timing in these tests: the shipped defaults.
const (
	agentInterval     = time.Second
	agentFastInterval = 200 * time.Millisecond
	agentRise         = 3
	agentFall         = 2
)

func startAgent(t *testing.T, tb *testbed, stateDir string, o agentOptions) *agentProc {
	t.Helper()
	cfg := tb.nodeConfig(t, stateDir, o.metrics)
	var argv []string
	if o.noBPF {
		argv = append(argv, "setpriv", "--inh-caps=-bpf,-perfmon,-sys_admin", "--bounding-set=-bpf,-perfmon,-sys_admin")
	}
	if bin := lbctlBinary(t); bin != "" && o.cpuprofile == "" {
		argv = append(argv, bin, "agent", "--config", cfg)
	} else {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		argv = append(argv, "env", helperEnv+"="+cfg, exe, "-test.run=^TestAgentInsideHelper$", "-test.v", "-test.count=1")
		if o.cpuprofile != "" {
			argv = append(argv, "-test.cpuprofile="+o.cpuprofile)
		}
	}
	a := &agentProc{config: cfg, client: agent.Client{Socket: filepath.Join(tb.dir, "run", "agent.sock")}}
	a.proc = tb.lb.Start(t, argv...)
	t.Logf("agent in %s: %s", tb.lb.Name, strings.Join(argv, " "))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent output:\n%s", lastLines(a.proc.Output(), 60))
		}
	})
	waitUntil(t, 10*time.Second, "agent control socket", func() bool {
		select {
		case <-a.proc.Done():
			t.Fatalf("agent exited: %v\n%s", a.proc.Wait(0), a.proc.Output())
		default:
		}
		_, err := a.client.Status(context.Background())
		return err == nil
	})
	return a
}

func (a *agentProc) status(t *testing.T) agent.Status {
	t.Helper()
	st, err := a.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// vipStatus returns the status of the named VIP.
func vipStatus(t *testing.T, st agent.Status, name string) agent.VIPStatus {
	t.Helper()
	i := slices.IndexFunc(st.VIPs, func(v agent.VIPStatus) bool { return v.Name == name })
	if i < 0 {
		t.Fatalf("VIP %s not in the agent's status %+v", name, st)
	}
	return st.VIPs[i]
}

// hostPrefixes returns the host routes of a VIP's addresses, IPv4 first.
func hostPrefixes(vips ...health.VIP) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range vips {
		for _, a := range v.Addresses {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	slices.SortFunc(out, func(p, q netip.Prefix) int { return p.Addr().Compare(q.Addr()) })
	return out
}

// selfSigned writes a PEM file with a certificate for the campus names, its
// (throwaway) CA and its key (HAProxy's crt format).
func selfSigned(t *testing.T, path string) {
	t.Helper()
	ca, err := testcert.NewCA("lbctl test CA")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := ca.IssueValid("*.campus.example", "campus.example")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(pem))
}

func waitUntil(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// latencies summarises durations as p50, p95 and max.
func latencies(ds []time.Duration) (p50, p95, maxD time.Duration) {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) time.Duration { return s[int(float64(len(s)-1)*p+0.5)] }
	return at(.5), at(.95), s[len(s)-1]
}

func fmtLatencies(ds []time.Duration) string {
	p50, p95, mx := latencies(ds)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %v p95 %v max %v (n=%d)", r(p50), r(p95), r(mx), len(ds))
}
