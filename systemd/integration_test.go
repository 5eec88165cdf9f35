//go:build linux

package systemd_test

// Integration tests: a real systemd as PID 1 in namespaces of its own
// (test/systemdtest) runs lb-haproxy@ instances written by UnitWriter and
// driven by the D-Bus Manager. The Manager runs inside systemd's PID
// namespace through systemdtest.RunInside (the TestHelper* functions); the
// test process itself writes files, serves the backend and runs the load
// client from a separate client namespace (test/netnstest) connected by a
// veth pair.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/systemd"
	"github.com/lbctl/lbctl/test/netnstest"
	"github.com/lbctl/lbctl/test/systemdtest"
)

// vips of the test: name -> address on the systemd namespace's lo.
var vips = []struct{ name, addr string }{
	{"192.0.2.10", "192.0.2.10"},
	{"192.0.2.11", "192.0.2.11"},
	{"192.0.2.12", "192.0.2.12"},
}

const (
	sdVeth    = "203.0.113.1"
	cliVeth   = "203.0.113.2"
	backend   = "127.0.0.1:8080"
	vipSubnet = "192.0.2.0/24"
)

func haproxyConfig(vip, addr string) string {
	return fmt.Sprintf(`global
    log /dev/log local0 notice
    hard-stop-after 5s
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout http-keep-alive 2s
frontend fe
    bind %s:80
    http-response set-header X-VIP %s
    default_backend be
backend be
    server s1 %s
`, addr, vip, backend)
}

// world is a namespaced systemd with VIPs on its lo, a Go backend inside
// it, and a client namespace routed to the VIPs over a veth pair.
type world struct {
	sd     *systemdtest.Systemd
	cli    *netnstest.NS
	client *http.Client // new connection per request
	keep   *http.Client // keep-alive
}

func newWorld(t *testing.T, addrs ...string) *world {
	t.Helper()
	sd := systemdtest.Start(t, systemdtest.Options{Name: "lbt-sd"})
	cli := netnstest.New(t, "sdcli")
	w := &world{sd: sd, cli: cli}

	sd.Run(t, "ip", "link", "set", "lo", "up")
	for _, a := range addrs {
		sd.Run(t, "ip", "addr", "add", a+"/32", "dev", "lo")
	}
	if out, err := exec.Command("ip", "link", "add", "veth-cli", "netns", cli.Name, "type", "veth",
		"peer", "name", "veth-sd", "netns", strconv.Itoa(sd.PID())).CombinedOutput(); err != nil {
		t.Fatalf("veth: %v: %s", err, out)
	}
	sd.Run(t, "ip", "addr", "add", sdVeth+"/24", "dev", "veth-sd")
	sd.Run(t, "ip", "link", "set", "veth-sd", "up")
	cli.AddAddr(t, "veth-cli", cliVeth+"/24")
	cli.IP(t, "link", "set", "veth-cli", "up")
	cli.IP(t, "route", "add", vipSubnet, "via", sdVeth)

	// The backend: a Go HTTP server listening inside systemd's namespace.
	var ln net.Listener
	if err := sd.InNetNS(func() (err error) {
		ln, err = net.Listen("tcp", backend)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		rw.Header().Set("X-Backend-Saw", host)
		io.WriteString(rw, "ok\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// Clients whose sockets are created in the client namespace.
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = cli.Do(func() error {
			c, err = dialer.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	w.client = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	w.keep = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 16}}
	t.Cleanup(func() { w.keep.CloseIdleConnections() })
	return w
}

func writeUnits(t *testing.T, sd *systemdtest.Systemd, in []systemd.Instance) {
	t.Helper()
	files, err := systemd.Files(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (systemd.UnitWriter{Dir: sd.RootPath(systemd.UnitDir)}).Sync(files); err != nil {
		t.Fatal(err)
	}
}

// get makes one request to a VIP and checks the answer came through
// HAProxy from the backend.
func get(c *http.Client, vip, addr string) error {
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(body) != "ok\n" || resp.Header.Get("X-VIP") != vip {
		return fmt.Errorf("status %d, X-VIP %q, body %q", resp.StatusCode, resp.Header.Get("X-VIP"), body)
	}
	return nil
}

// load runs workers per client against one VIP until stop is closed or
// the bounds are hit, and counts requests and failures.
type loadResult struct {
	Requests, Errors int64
	FirstErrors      []string
}

func load(stop <-chan struct{}, maxDur time.Duration, maxReq int64, vip, addr string, clients ...*http.Client) *loadResult {
	res := &loadResult{}
	var reqs, errs atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(maxDur)
	for _, c := range clients {
		for range 2 {
			wg.Go(func() {
				for time.Now().Before(deadline) && reqs.Load() < maxReq {
					select {
					case <-stop:
						return
					default:
					}
					reqs.Add(1)
					if err := get(c, vip, addr); err != nil {
						errs.Add(1)
						mu.Lock()
						if len(res.FirstErrors) < 5 {
							res.FirstErrors = append(res.FirstErrors, err.Error())
						}
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	res.Requests, res.Errors = reqs.Load(), errs.Load()
	return res
}

func unitNames() []string {
	var out []string
	for _, v := range vips {
		out = append(out, systemd.UnitName(v.name))
	}
	return out
}

// TestHAProxyUnits starts three VIP instances, reloads one 20 times under
// load from the client namespace, then tries a broken config.
func TestHAProxyUnits(t *testing.T) {
	w := newWorld(t, vips[0].addr, vips[1].addr, vips[2].addr)
	sd := w.sd
	a := vips[0]
	writeUnits(t, sd, []systemd.Instance{{Name: vips[0].name}, {Name: vips[1].name}, {Name: vips[2].name}})
	for _, v := range vips {
		sd.WriteFile(t, systemd.ConfigPath(v.name), []byte(haproxyConfig(v.name, v.addr)), 0o644)
	}

	var started startResult
	systemdtest.RunInside(t, sd, "TestHelperStart", map[string]string{"LBTEST_UNITS": strings.Join(unitNames(), ",")}, &started)
	for i, v := range vips {
		st := started.States[i]
		if !st.Active() || st.SubState != "running" || st.MainPID == 0 {
			t.Fatalf("%s after start: %v", v.name, st)
		}
		if err := get(w.client, v.name, v.addr); err != nil {
			t.Fatalf("%s from the client namespace: %v", v.name, err)
		}
		// HAProxy runs as haproxy with CAP_NET_BIND_SERVICE only.
		status := sd.Run(t, "cat", fmt.Sprintf("/proc/%d/status", st.MainPID))
		if !regexp.MustCompile(`(?m)^CapEff:\s+0+400$`).MatchString(status) ||
			!regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s`).MatchString(status) || strings.Contains(status, "Uid:\t0\t") {
			t.Errorf("%s: main process credentials:\n%s", v.name, grepLines(status, "Uid:", "Cap"))
		}
	}
	t.Logf("start latency (3 units, one at a time): %v", started.Latencies)

	// Reload latency without load, for reference.
	var idle reloadResult
	systemdtest.RunInside(t, sd, "TestHelperReloads", map[string]string{
		"LBTEST_UNIT":   systemd.UnitName(a.name),
		"LBTEST_OTHERS": strings.Join(unitNames()[1:], ","),
		"LBTEST_COUNT":  "10",
		"LBTEST_SPAN":   "3s",
	}, &idle)
	t.Logf("reload job latency without load: p50 %v max %v (%d reloads)", idle.P50, idle.Max, idle.Reloads)

	// Hitless reload: 20 reloads of VIP A spread over ~10 s of load.
	stop := make(chan struct{})
	var lr *loadResult
	done := make(chan struct{})
	go func() {
		lr = load(stop, 12*time.Second, 400_000, a.name, a.addr, w.client, w.keep)
		close(done)
	}()
	var rr reloadResult
	start := time.Now()
	systemdtest.RunInside(t, sd, "TestHelperReloads", map[string]string{
		"LBTEST_UNIT":   systemd.UnitName(a.name),
		"LBTEST_OTHERS": strings.Join(unitNames()[1:], ","),
		"LBTEST_COUNT":  "20",
		"LBTEST_SPAN":   "9.5s",
	}, &rr)
	close(stop)
	<-done
	elapsed := time.Since(start)
	t.Logf("hitless reload: %d requests (%.0f/s), %d errors, %d reloads in %v; reload job latency p50 %v max %v; main PID %d throughout",
		lr.Requests, float64(lr.Requests)/elapsed.Seconds(), lr.Errors, rr.Reloads, elapsed.Round(time.Millisecond),
		rr.P50, rr.Max, rr.MainPID)
	if lr.Errors != 0 {
		t.Errorf("%d of %d requests failed during reloads: %q", lr.Errors, lr.Requests, lr.FirstErrors)
	}
	if rr.Reloads != 20 || lr.Requests < 1000 {
		t.Errorf("too little happened: %d reloads, %d requests", rr.Reloads, lr.Requests)
	}

	// A broken config: the reload job fails in ExecReload, the running
	// HAProxy keeps serving with the same main PID.
	sd.WriteFile(t, systemd.ConfigPath(a.name), []byte(haproxyConfig(a.name, a.addr)+"    bogus-keyword on\n"), 0o644)
	stop = make(chan struct{})
	done = make(chan struct{})
	go func() {
		lr = load(stop, 5*time.Second, 100_000, a.name, a.addr, w.client, w.keep)
		close(done)
	}()
	var br brokenResult
	systemdtest.RunInside(t, sd, "TestHelperBrokenReload", map[string]string{"LBTEST_UNIT": systemd.UnitName(a.name)}, &br)
	close(stop)
	<-done
	t.Logf("broken reload refused: %s", br.Error)
	for _, want := range []string{"reload " + systemd.UnitName(a.name) + ": job failed", "ExecReload /usr/sbin/haproxy -c -f", "bogus-keyword"} {
		if !strings.Contains(br.Error, want) {
			t.Errorf("broken reload error lacks %q: %s", want, br.Error)
		}
	}
	if lr.Errors != 0 || lr.Requests == 0 {
		t.Errorf("during the refused reload: %d of %d requests failed: %q", lr.Errors, lr.Requests, lr.FirstErrors)
	}
	if err := get(w.client, a.name, a.addr); err != nil {
		t.Errorf("after the refused reload: %v", err)
	}
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// insideManager is the D-Bus manager of the namespaced systemd a helper
// test runs under (skipped outside it), closed in cleanup; with reload it
// has done a daemon-reload. Failures name the last journalLines lines of the
// unit's journal.
func insideManager(t *testing.T, journalLines int, reload bool) (context.Context, *systemd.DBus) {
	t.Helper()
	systemdtest.SkipUnlessInside(t)
	ctx := t.Context()
	m, err := systemd.NewDBus(ctx, systemd.WithLogHint(systemd.JournalHint(journalLines)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if reload {
		if err := m.DaemonReload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, m
}

type startResult struct {
	States    []systemd.UnitState
	Latencies []time.Duration
}

// TestHelperStart runs inside: daemon-reload, start each unit, read states.
func TestHelperStart(t *testing.T) {
	ctx, m := insideManager(t, 5, true)
	var res startResult
	for _, u := range strings.Split(os.Getenv("LBTEST_UNITS"), ",") {
		t0 := time.Now()
		if err := m.Start(ctx, u); err != nil {
			t.Fatal(err)
		}
		res.Latencies = append(res.Latencies, time.Since(t0).Round(time.Millisecond))
		st, err := m.State(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		res.States = append(res.States, st)
	}
	list, err := m.List(ctx, "lb-haproxy@*.service")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(list, res.States, func(a, b systemd.UnitState) bool { return a.Name == b.Name && a.MainPID == b.MainPID }) {
		t.Fatalf("List = %v, want %v", list, res.States)
	}
	systemdtest.Emit(t, res)
}

type reloadResult struct {
	Reloads  int
	MainPID  uint32
	P50, Max time.Duration
}

// TestHelperReloads runs inside: reload LBTEST_UNIT LBTEST_COUNT times over
// LBTEST_SPAN, checking after each reload that its main PID did not change
// and at the end that the other units kept theirs.
func TestHelperReloads(t *testing.T) {
	ctx, m := insideManager(t, 5, false)
	unit := os.Getenv("LBTEST_UNIT")
	others := strings.Split(os.Getenv("LBTEST_OTHERS"), ",")
	count, _ := strconv.Atoi(os.Getenv("LBTEST_COUNT"))
	span, _ := time.ParseDuration(os.Getenv("LBTEST_SPAN"))
	pids := map[string]uint32{}
	for _, u := range append([]string{unit}, others...) {
		st, err := m.State(ctx, u)
		if err != nil || st.MainPID == 0 {
			t.Fatalf("%s: %v %v", u, st, err)
		}
		pids[u] = st.MainPID
	}
	var lat []time.Duration
	tick := time.NewTicker(span / time.Duration(count))
	defer tick.Stop()
	for i := range count {
		<-tick.C // pacing the reloads over the load window, not waiting for a result
		t0 := time.Now()
		if err := m.Reload(ctx, unit); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
		lat = append(lat, time.Since(t0))
		st, err := m.State(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		if st.MainPID != pids[unit] || !st.Active() || st.NRestarts != 0 {
			t.Fatalf("after reload %d: %v, main PID was %d", i+1, st, pids[unit])
		}
	}
	for _, u := range others {
		st, err := m.State(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if st.MainPID != pids[u] || !st.Active() {
			t.Errorf("%s: %v, main PID was %d", u, st, pids[u])
		}
	}
	slices.Sort(lat)
	systemdtest.Emit(t, reloadResult{Reloads: len(lat), MainPID: pids[unit],
		P50: lat[len(lat)/2].Round(time.Microsecond), Max: lat[len(lat)-1].Round(time.Microsecond)})
}

type brokenResult struct{ Error string }

// TestHelperBrokenReload runs inside: the reload must fail as a job error,
// leaving the unit active with the same main PID.
func TestHelperBrokenReload(t *testing.T) {
	ctx, m := insideManager(t, 8, false)
	unit := os.Getenv("LBTEST_UNIT")
	before, err := m.State(ctx, unit)
	if err != nil {
		t.Fatal(err)
	}
	rerr := m.Reload(ctx, unit)
	var je *systemd.JobError
	if !errors.As(rerr, &je) || je.Result != "failed" {
		t.Fatalf("reload with a broken config: %v, want a failed job", rerr)
	}
	after, err := m.State(ctx, unit)
	if err != nil {
		t.Fatal(err)
	}
	if after.MainPID != before.MainPID || !after.Active() {
		t.Fatalf("after the refused reload: %v, before %v", after, before)
	}
	b, _ := json.Marshal(je.State)
	t.Logf("state in the error: %s", b)
	systemdtest.Emit(t, brokenResult{Error: rerr.Error()})
}

// TestUnitPrivilegesAndErrors checks the capabilities each instance gets
// (CAP_NET_BIND_SERVICE only; CAP_NET_ADMIN added by the transparent
// drop-in) and that a transparent backend connection ("usesrc clientip")
// works with the drop-in and fails without it; then the Manager's errors
// for impossible transitions, stop, and the exposure systemd-analyze
// reports for the units as loaded by the namespaced systemd.
func TestUnitPrivilegesAndErrors(t *testing.T) {
	const tpAddr, tpnoAddr = "192.0.2.13", "192.0.2.14"
	w := newWorld(t, tpAddr, tpnoAddr)
	sd := w.sd
	// Replies from the backend (source 127.0.0.1) to the client's address
	// are delivered locally, to HAProxy's transparent socket.
	sd.Run(t, "ip", "rule", "add", "from", "127.0.0.1", "lookup", "100")
	sd.Run(t, "ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")

	writeUnits(t, sd, []systemd.Instance{{Name: "plain"}, {Name: "tp", Transparent: true}, {Name: "tpno"}})
	plain := strings.Replace(haproxyConfig("plain", "127.0.0.1"), "default_backend be",
		"http-request return status 200 content-type text/plain string plain", 1)
	sd.WriteFile(t, systemd.ConfigPath("plain"), []byte(plain), 0o644)
	transparent := func(vip, addr string) []byte {
		return []byte(strings.Replace(haproxyConfig(vip, addr), "\nbackend be\n", "\nbackend be\n    source 0.0.0.0 usesrc clientip\n", 1))
	}
	sd.WriteFile(t, systemd.ConfigPath("tp"), transparent("tp", tpAddr), 0o644)
	sd.WriteFile(t, systemd.ConfigPath("tpno"), transparent("tpno", tpnoAddr), 0o644)

	systemdtest.RunInside(t, sd, "TestHelperPrivileges", nil, nil)

	// With CAP_NET_ADMIN the backend sees the client's own address.
	resp, err := w.client.Get("http://" + tpAddr + "/")
	if err != nil {
		t.Fatalf("transparent VIP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Backend-Saw") != cliVeth {
		t.Errorf("transparent VIP: status %d, backend saw %q, want 200 and %s\n%s\n%s", resp.StatusCode, resp.Header.Get("X-Backend-Saw"), cliVeth,
			sd.Run(t, "cat", systemd.ConfigPath("tp")), sd.Run(t, "journalctl", "--no-pager", "-u", systemd.UnitName("tp")))
	}
	// Without it HAProxy cannot use the client's address as source.
	resp, err = w.client.Get("http://" + tpnoAddr + "/")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("usesrc clientip worked without CAP_NET_ADMIN (backend saw %q)", resp.Header.Get("X-Backend-Saw"))
		}
		t.Logf("without the drop-in: status %d", resp.StatusCode)
	}

	systemdtest.RunInside(t, sd, "TestHelperErrorsAndStop", nil, nil)

	for _, vip := range []string{"plain", "tp"} {
		out := sd.Run(t, "systemd-analyze", "security", "--no-pager", systemd.UnitName(vip))
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security:\n%s", out)
		}
		exp, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("systemd-analyze security %s (online, in the namespaced systemd): %.1f", systemd.UnitName(vip), exp)
		if exp > 2.5 {
			t.Errorf("%s exposure %.1f > 2.5", vip, exp)
		}
	}
}

// capEff reads a process's effective capabilities.
func capEff(t *testing.T, pid uint32) (uint64, string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapEff:\s+([0-9a-f]+)$`).FindSubmatch(b)
	u := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(b)
	if m == nil || u == nil {
		t.Fatalf("status of %d:\n%s", pid, b)
	}
	c, _ := strconv.ParseUint(string(m[1]), 16, 64)
	return c, string(u[1])
}

func TestHelperPrivileges(t *testing.T) {
	ctx, m := insideManager(t, 5, true)
	const netBind, netAdmin = 1 << 10, 1 << 12
	for _, tc := range []struct {
		vip  string
		caps uint64
	}{{"plain", netBind}, {"tp", netBind | netAdmin}, {"tpno", netBind}} {
		u := systemd.UnitName(tc.vip)
		if err := m.Start(ctx, u); err != nil {
			t.Fatalf("start %s: %v", u, err)
		}
		st, err := m.State(ctx, u)
		if err != nil || !st.Active() {
			t.Fatalf("%s: %v %v", u, st, err)
		}
		caps, uid := capEff(t, st.MainPID)
		t.Logf("%s: main PID %d uid %s CapEff %#x", u, st.MainPID, uid, caps)
		if caps != tc.caps || uid == "0" {
			t.Errorf("%s: uid %s CapEff %#x, want a non-root uid and %#x", u, uid, caps, tc.caps)
		}
	}
	resp, err := http.Get("http://127.0.0.1/")
	if err != nil {
		t.Fatalf("plain instance: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "plain" {
		t.Errorf("plain instance answered %d %q", resp.StatusCode, body)
	}
}

func TestHelperErrorsAndStop(t *testing.T) {
	ctx, m := insideManager(t, 5, false)
	// The agent's view of unit state: from signals, no call per question.
	watch, err := m.WatchUnits(ctx, systemd.UnitPattern)
	if err != nil {
		t.Fatal(err)
	}
	waitState := func(unit string, want func(string) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !want(watch.ActiveState(unit)) {
			if time.Now().After(deadline) {
				t.Fatalf("unit watch: %s is %q, want %s", unit, watch.ActiveState(unit), what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitState(systemd.UnitName("plain"), func(s string) bool { return s == "active" }, "active")
	// Impossible transitions are refused with the package's errors.
	if err := m.Reload(ctx, systemd.UnitName("idle")); !errors.Is(err, systemd.ErrNotActive) {
		t.Errorf("reload of an inactive unit: %v, want ErrNotActive", err)
	}
	if err := m.Stop(ctx, "lbtest-nope.service"); !errors.Is(err, systemd.ErrUnitNotFound) {
		t.Errorf("stop of an unknown unit: %v, want ErrUnitNotFound", err)
	}
	if err := m.Start(ctx, "lbtest-nope.service"); !errors.Is(err, systemd.ErrUnitNotFound) {
		t.Errorf("start of an unknown unit: %v, want ErrUnitNotFound", err)
	}
	if st, err := m.State(ctx, "lbtest-nope.service"); err != nil || st.LoadState != "not-found" {
		t.Errorf("state of an unknown unit: %v %v", st, err)
	}
	// Restart gives a new main PID.
	tp := systemd.UnitName("tp")
	before, err := m.State(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Restart(ctx, tp); err != nil {
		t.Fatal(err)
	}
	if after, err := m.State(ctx, tp); err != nil || !after.Active() || after.MainPID == before.MainPID || after.MainPID == 0 {
		t.Errorf("restart: before %v, after %v %v", before, after, err)
	}
	// ActiveState, the health gate's one property read, agrees.
	if st, err := m.ActiveState(ctx, tp); err != nil || st != "active" {
		t.Errorf("active state of %s: %q %v", tp, st, err)
	}
	if st, err := m.ActiveState(ctx, "lbtest-nope.service"); err != nil || st != "inactive" {
		t.Errorf("active state of an unknown unit: %q %v", st, err)
	}

	// A start that fails (HAProxy refuses the config) is a job error
	// naming the command, with HAProxy's reason from the journal.
	if err := os.WriteFile(systemd.ConfigPath("tpno"), []byte("global\n    bogus-global\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = m.Restart(ctx, systemd.UnitName("tpno"))
	var je *systemd.JobError
	if !errors.As(err, &je) || !strings.Contains(err.Error(), "ExecStart /usr/sbin/haproxy -Ws -f") || !strings.Contains(err.Error(), "bogus-global") {
		t.Errorf("restart with a broken config: %v", err)
	}
	t.Logf("restart with a broken config: %v", err)

	// Stop: inactive, no main PID, runtime directory gone.
	u := systemd.UnitName("plain")
	t0 := time.Now()
	if err := m.Stop(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop latency: %v", time.Since(t0).Round(time.Millisecond))
	st, err := m.State(ctx, u)
	if err != nil || st.ActiveState != "inactive" || st.MainPID != 0 {
		t.Errorf("after stop: %v %v", st, err)
	}
	waitState(u, func(s string) bool { return s == "inactive" || s == "" }, "inactive after the stop")
	if active, err := watch.Active(u); active || err != nil {
		t.Errorf("unit watch after stop: active %v, %v", active, err)
	}
	// A SIGKILL of a main PID (no job: only signals tell) leaves the unit
	// not active until systemd restarts it.
	if st, err = m.State(ctx, tp); err != nil || st.MainPID == 0 {
		t.Fatalf("state of %s: %v %v", tp, st, err)
	}
	// ... and Notify tells of it as it happens.
	notified := make(chan string, 64)
	watch.Notify(func(unit, state string) {
		if unit == tp {
			select {
			case notified <- state:
			default:
			}
		}
	})
	t0 = time.Now()
	if err := syscall.Kill(int(st.MainPID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case state := <-notified:
		if state == "active" || state == "reloading" {
			t.Errorf("first notification after SIGKILL of %s: %q, want a state that is not active", tp, state)
		}
		t.Logf("unit watch: SIGKILL of %s's main PID notified %v later (%s)", tp, time.Since(t0).Round(time.Microsecond), state)
	case <-time.After(10 * time.Second):
		t.Errorf("no notification of %s after SIGKILL of its main PID", tp)
	}
	waitState(tp, func(s string) bool { return s != "active" }, "not active after SIGKILL")
	t.Logf("unit watch: SIGKILL of %s's main PID seen %v later", tp, time.Since(t0).Round(time.Microsecond))
	if n := watch.Lists(); n != 1 {
		t.Errorf("unit watch listed the units %d times, want once (at the start)", n)
	}
	if _, err := os.Stat(systemd.RuntimeDir("plain")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime directory after stop: %v", err)
	}
	if resp, err := http.Get("http://127.0.0.1/"); err == nil {
		resp.Body.Close()
		t.Errorf("plain instance still answers after stop")
	}
}
