//go:build linux

package scale

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/test/testbed"
)

// TestScale is the scale benchmark (`make bench-scale`, scripts/bench-scale.sh).
// It runs only when LBCTL_SCALE_SIZES names the sizes ("8,50,150,500"):
// for each, it generates the site, brings the sandbox up with systemd LB
// nodes, and measures the cold install of each node alone (lb1 while lb2
// is provisioned but idle, then lb2 while lb1 serves; with where lb1's
// time went, from the install's phase and step lines, and the CPU the
// node's processes used meanwhile, from its cgroups), incremental
// installs that change one service, failover and re-announce (SIGKILL of
// a VIP's HAProxy on lb1, LBCTL_SCALE_TRIALS times), the agent's CPU and
// RSS and the health checks reaching one backend server shared by many
// VIPs over an idle window (LBCTL_SCALE_IDLE), HAProxy's processes,
// threads and PSS, and BIRD's reconfigure time. The load average is taken
// with every figure. The nodes run the agent with its shipped timing
// (interval 1 s, fast interval 200 ms), not the e2e sandbox's faster one. It writes the Markdown table and growth curves to
// LBCTL_SCALE_OUT (default: the test log) after every size.
//
// Each size is a subtest with its own deadline (sizeTimeout, a hang
// guard): a size that fails is reported in the table with the stage it
// failed in, its sandbox is torn down and the next size runs.
func TestScale(t *testing.T) {
	sizes := os.Getenv("LBCTL_SCALE_SIZES")
	if sizes == "" {
		t.Skip("the scale benchmark runs with LBCTL_SCALE_SIZES=8,50,150 (make bench-scale)")
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux: builds the sandbox (network namespaces, systemd as PID 1 per LB node)")
	}
	for _, tool := range []string{"ip", "nsenter", "unshare", "bird", "birdc", "haproxy", "nft", "/lib/systemd/systemd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps): %v", tool, err)
		}
	}
	var ns []int
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < CampusVIPs {
			t.Fatalf("LBCTL_SCALE_SIZES: %q: want VIP counts of at least %d", f, CampusVIPs)
		}
		ns = append(ns, n)
	}
	b := newBench(t)
	var rows []*Row
	for _, n := range ns {
		r := newRow(n)
		start := time.Now()
		if !t.Run(fmt.Sprintf("vips=%d", n), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), sizeTimeout(n))
			defer cancel()
			b.run(t, ctx, r)
		}) {
			r.Failed = r.Stage
		}
		r.Took = time.Since(start)
		rows = append(rows, r)
		t.Logf("size %d: %s in %v", n, map[bool]string{true: "done", false: "FAILED during " + r.Stage}[r.Failed == ""], r.Took.Round(time.Second))
		// Written after every size, so a later failure keeps these.
		md := Markdown(rows, time.Now())
		if p := os.Getenv("LBCTL_SCALE_OUT"); p != "" {
			if err := os.WriteFile(p, []byte(md), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Log("\n" + md)
	}
}

// sizeTimeout bounds one size, sandbox up to teardown (a hang guard, not a
// target): 10 minutes plus 3 s per VIP (25 minutes at 500).
func sizeTimeout(vips int) time.Duration { return 10*time.Minute + time.Duration(vips)*3*time.Second }

type bench struct {
	root, work, lbctl, key, pubkey, agentUnit string
	trials                                    int
	idle                                      time.Duration
	// backend runs the sandbox's backend servers (lbctl-testbed serve-backend).
	backend []string
}

func newBench(t *testing.T) *bench {
	ctx := t.Context()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{root: root, work: t.TempDir(), trials: 20, idle: 60 * time.Second}
	if s := os.Getenv("LBCTL_SCALE_TRIALS"); s != "" {
		if b.trials, err = strconv.Atoi(s); err != nil {
			t.Fatalf("LBCTL_SCALE_TRIALS: %v", err)
		}
	}
	if s := os.Getenv("LBCTL_SCALE_IDLE"); s != "" {
		if b.idle, err = time.ParseDuration(s); err != nil {
			t.Fatalf("LBCTL_SCALE_IDLE: %v", err)
		}
	}
	// LBCTL_SCALE_LBCTL is a built lbctl (scripts/bench-scale.sh passes
	// bin/lbctl, with bin/lbctl-testbed beside it); without it the test
	// builds both.
	if b.lbctl = os.Getenv("LBCTL_SCALE_LBCTL"); b.lbctl == "" {
		bins, err := testbed.BuildBinaries(ctx, root, b.work)
		if err != nil {
			t.Fatal(err)
		}
		b.lbctl, b.backend = bins.LBCTL, bins.BackendCommand()
	} else if b.lbctl, err = filepath.Abs(b.lbctl); err != nil {
		t.Fatal(err)
	} else {
		// bin/lbctl-testbed beside bin/lbctl, as `make build` leaves them.
		b.backend = testbed.Binaries{Testbed: filepath.Join(filepath.Dir(b.lbctl), "lbctl-testbed")}.BackendCommand()
	}
	b.lbctlRun(t, "keygen", "--unencrypted", filepath.Join(b.work, "admin"))
	b.key, b.pubkey = filepath.Join(b.work, "admin.key"), filepath.Join(b.work, "admin.pub")
	unit, err := os.ReadFile(filepath.Join(root, "packaging", "systemd", testbed.AgentUnitName))
	if err != nil {
		t.Fatalf("shipped agent unit: %v", err)
	}
	b.agentUnit = string(unit)
	return b
}

func (b *bench) lbctlRun(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), b.lbctl, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			out = append(out, ee.Stderr...)
		}
		t.Fatalf("lbctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (b *bench) bundle(t *testing.T, tree string, serial int) []byte {
	t.Helper()
	out := filepath.Join(b.work, fmt.Sprintf("bundle-%d", serial))
	b.lbctlRun(t, "build", tree, "--key", b.key, "--serial", fmt.Sprint(serial), "--time", "1700000000", "--expires", "never", "-o", out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sizeRun is one size's sandbox and what its stages share.
type sizeRun struct {
	s        *testbed.Site
	nodes    []string
	prefixes []netip.Prefix
	tree     string
	serial   int
	// checks reads the SYN counter at the shared group's first server.
	checks func() (uint64, error)
}

// run measures one size into r, stage by stage (r.Stage names the one
// under way, for the table when it fails).
func (b *bench) run(t *testing.T, ctx context.Context, r *Row) {
	r.Stage = "sandbox up"
	sr, down := b.setUp(t, ctx, r)
	defer down()
	r.Stage = "cold install"
	b.coldInstalls(t, ctx, r, sr)
	r.Stage = "routes through both nodes"
	ecmp := time.Now()
	if err := sr.s.WaitECMP(ctx, sr.prefixes, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	r.ECMP = time.Since(ecmp)
	r.Stage = "incremental installs"
	b.incrementals(t, ctx, r, sr)
	r.Stage = "failover trials"
	b.failovers(t, ctx, r, sr)
	r.Stage = "idle window"
	b.idleWindow(t, r, sr)
	r.Stage = "HAProxy footprint and BIRD"
	b.footprint(t, ctx, r, sr)
	r.Stage = ""
}

// setUp generates the site, brings the sandbox up and provisions both
// nodes (binary, configuration, key, agent running; nothing installed).
func (b *bench) setUp(t *testing.T, ctx context.Context, r *Row) (*sizeRun, func()) {
	sr := &sizeRun{tree: filepath.Join(b.work, fmt.Sprintf("site%d", r.VIPs)), serial: 100,
		checks: func() (uint64, error) { return 0, nil }}
	svcs, err := Generate(filepath.Join(b.root, "examples", "campus"), sr.tree, r.VIPs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		if s.Kind == Shared {
			r.SharedBy++
		}
	}
	m, err := model.Decode(b.lbctlRun(t, "resolve", sr.tree, "--json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range m.VIPs {
		for _, a := range v.Addresses {
			sr.prefixes = append(sr.prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	r.Load = loadavg()
	sr.s, err = testbed.Up(ctx, m, testbed.Options{
		Dir:            filepath.Join(b.work, fmt.Sprintf("sandbox%d", r.VIPs)),
		Prefix:         fmt.Sprintf("lbsc%03x-", rand.IntN(1<<12)),
		BackendCommand: b.backend,
		LaunchNode:     testbed.SystemdNodes{}.Launch,
		Timeout:        120 * time.Second,
	})
	if err != nil {
		t.Fatalf("sandbox up (%d VIPs): %v", r.VIPs, err)
	}
	down := func() {
		if err := sr.s.Down(context.Background()); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	}
	for _, n := range sr.s.Nodes {
		sr.nodes = append(sr.nodes, n.Name)
	}
	eachNode(t, sr.nodes, func(node string) error {
		return sr.s.Provision(ctx, node, testbed.NodeSetup{LBCTL: b.lbctl, TrustedKeys: []string{b.pubkey},
			Config: testbed.NodeConfigShippedAgent(sr.s.Node(node).Hostname, 10*time.Minute), AgentUnit: b.agentUnit})
	})
	// The shared group exists from 18 VIPs on (one generated VIP in ten).
	if r.SharedBy > 0 {
		if sr.checks, err = countChecks(ctx, sr.s, BackendAddr(BackendHosts), SharedPort); err != nil {
			down()
			t.Fatal(err)
		}
	}
	return sr, down
}

// coldInstalls installs the first release on one node at a time: lb1
// while lb2 is idle (the per-node figure), then lb2 while lb1 serves. It
// records lb1's profile and the CPU its node used meanwhile.
func (b *bench) coldInstalls(t *testing.T, ctx context.Context, r *Row, sr *sizeRun) {
	cold := b.bundle(t, sr.tree, sr.serial)
	for i, node := range sr.nodes {
		r.Stage = "cold install of " + node
		cg := sr.s.Node(node).Cgroup
		before := readCPU(cg)
		d, p, err := timedInstall(ctx, sr.s, node, cold)
		if err != nil {
			t.Fatal(err)
		}
		r.Cold[node], r.LoadCold[node] = d, loadavg()
		if i == 0 {
			r.Profile, r.ColdCPU = p, readCPU(cg).since(before)
			r.ColdCPU.Install = p.CPU
		}
		t.Logf("%d VIPs: cold install of %s %v (load %.1f), phases %v, steps %v", r.VIPs, node, d, r.LoadCold[node], p.Phases, p.ByKind)
	}
	t.Logf("%d VIPs: CPU during lb1's cold install: %+v", r.VIPs, r.ColdCPU)
}

// incrementals changes web/wiki's balance algorithm back and forth, three
// installs on each node, one node after the other.
func (b *bench) incrementals(t *testing.T, ctx context.Context, r *Row, sr *sizeRun) {
	wiki := filepath.Join(sr.tree, "web", "wiki.yaml")
	orig, err := os.ReadFile(wiki)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(orig), "balance: source", "balance: roundrobin", 1)
	incr := map[string][]time.Duration{}
	var profiles []Profile
	for i := range 3 {
		data := changed
		if i%2 == 1 {
			data = string(orig)
		}
		if err := os.WriteFile(wiki, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		sr.serial++
		bun := b.bundle(t, sr.tree, sr.serial)
		for _, node := range sr.nodes {
			d, p, err := timedInstall(ctx, sr.s, node, bun)
			if err != nil {
				t.Fatal(err)
			}
			incr[node] = append(incr[node], d)
			if node == sr.nodes[0] {
				profiles = append(profiles, p)
				r.IncrReloads = p.Steps["reload-vip"] + p.Steps["restart-unit"] + p.Steps["start-unit"]
			}
		}
	}
	for n, ds := range incr {
		r.Incr[n] = median(ds)
	}
	// lb1's profile of its median install.
	for _, p := range profiles {
		if p.Wall == r.Incr[sr.nodes[0]] {
			r.IncrProfile = p
		}
	}
	r.LoadIncr = loadavg()
	t.Logf("%d VIPs: incremental installs %v (%d units started or reloaded), lb1's median: phases %v, steps %v",
		r.VIPs, incr, r.IncrReloads, r.IncrProfile.Phases, r.IncrProfile.ByKind)
}

// failovers kills wiki's HAProxy on lb1 and times the withdrawal at the
// router and the way back, once every route is back.
// killSpacing is the least time between two SIGKILLs of the same VIP's
// HAProxy: with re-announce at ~1.5 s the trials once came 1.7 s apart,
// and the sixth kill within 10 s left the unit failed for good.
const killSpacing = 3 * time.Second

func (b *bench) failovers(t *testing.T, ctx context.Context, r *Row, sr *sizeRun) {
	if err := sr.s.WaitECMP(ctx, sr.prefixes, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	wikiPrefix := []netip.Prefix{netip.MustParsePrefix("192.0.2.11/32")}
	var last time.Time
	for range b.trials {
		if err := sr.s.WaitECMP(ctx, wikiPrefix, time.Minute); err != nil {
			t.Fatal(err)
		}
		// systemd gives up on a unit restarted 5 times within 10 s
		// (StartLimitBurst, StartLimitIntervalSec): at most one kill
		// every killSpacing keeps the trials from tripping it.
		time.Sleep(time.Until(last.Add(killSpacing)))
		last = time.Now()
		f, err := sr.s.KillHAProxy(ctx, sr.nodes[0], "192.0.2.11", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		back, err := sr.s.WaitBack(ctx, f, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r.Failover = append(r.Failover, f.Withdrawn)
		r.Reannounce = append(r.Reannounce, back)
		if f.BackAfterStart > 0 {
			r.ReannounceAfterStart = append(r.ReannounceAfterStart, f.BackAfterStart)
		}
		t.Logf("%d VIPs: failover trial %d: withdrawn %v, back %v (%v after HAProxy's start)", r.VIPs, len(r.Failover), f.Withdrawn, back, f.BackAfterStart)
	}
	r.LoadFailover = loadavg()
}

// idleWindow measures lb1's agent (CPU, max RSS) and the checks reaching
// the shared server over the idle window.
func (b *bench) idleWindow(t *testing.T, r *Row, sr *sizeRun) {
	agent := nodeProcs(t, sr.s, sr.nodes[0]).agent
	if agent == 0 {
		t.Fatalf("no agent process on %s", sr.nodes[0])
	}
	cpu0, _ := cpuTicks(agent)
	c0, err := sr.checks()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var maxRSS float64
	for time.Since(start) < b.idle {
		if kb := statusKB(agent, "VmRSS"); kb/1024 > maxRSS {
			maxRSS = kb / 1024
		}
		time.Sleep(time.Second)
	}
	cpu1, _ := cpuTicks(agent)
	c1, err := sr.checks()
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	r.AgentCPU = float64(cpu1-cpu0) / clkTck / elapsed.Seconds()
	r.AgentRSSMB = maxRSS
	r.Checks = float64(c1-c0) / elapsed.Seconds()
	r.LoadIdle = loadavg()
}

// footprint reads HAProxy's processes, threads and PSS on lb1 and times
// `birdc configure` there (same config: what a reconfigure costs).
func (b *bench) footprint(t *testing.T, ctx context.Context, r *Row, sr *sizeRun) {
	procs := nodeProcs(t, sr.s, sr.nodes[0])
	r.HAProxyProcs = len(procs.haproxy)
	for _, pid := range procs.haproxy {
		r.HAProxyThreads += int(statusKB(pid, "Threads"))
		r.HAProxyPSSMB += rollupKB(pid, "Pss") / 1024
	}
	var bird []time.Duration
	for range 5 {
		st := time.Now()
		if _, err := sr.s.NodeRun(ctx, sr.nodes[0], nil, "birdc", "-s", testbed.NodeBirdSocket, "configure"); err != nil {
			t.Fatal(err)
		}
		bird = append(bird, time.Since(st))
	}
	r.BirdConfigure = median(bird)
}

func eachNode(t *testing.T, nodes []string, fn func(node string) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() { errs[i] = fn(n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

var stepLine = regexp.MustCompile(`^step (\d+)/(\d+): (\S+)`)

// timedInstall runs `lbctl install` on the node and times it, its phases
// (from the "took:" line under its result) and its steps (from the step
// lines it prints on standard error), and takes the CPU it and its
// children (haproxy -c) used.
func timedInstall(ctx context.Context, s *testbed.Site, node string, bundle []byte) (time.Duration, Profile, error) {
	p := Profile{ByKind: map[string]time.Duration{}, Steps: map[string]int{}, Phases: map[string]time.Duration{}}
	cmd, err := s.NodeCommand(ctx, node, testbed.NodeLBCTL, "install", "--config", testbed.NodeConfigPath, "-")
	if err != nil {
		return 0, p, err
	}
	cmd.Stdin = strings.NewReader(string(bundle))
	var out strings.Builder
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, p, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, p, err
	}
	type mark struct {
		at   time.Time
		kind string
	}
	var marks []mark
	var errOut strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := stepLine.FindStringSubmatch(sc.Text()); m != nil {
			marks = append(marks, mark{time.Now(), m[3]})
			continue
		}
		errOut.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	end := time.Now()
	if err != nil {
		return 0, p, fmt.Errorf("install on %s: %w\n%s%s", node, err, out.String(), errOut.String())
	}
	// nsenter's usage includes lbctl's and its children's, which it waited for.
	p.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	p.Wall = end.Sub(start)
	parseTook(out.String(), p.Phases)
	for i, m := range marks {
		next := end
		if i+1 < len(marks) {
			next = marks[i+1].at
		}
		p.ByKind[m.kind] += next.Sub(m.at)
		p.Steps[m.kind]++
	}
	return p.Wall, p, nil
}

// countChecks puts an nftables counter of TCP connections (SYNs) to port
// in the namespace of the backend at addr and returns a reader of it.
func countChecks(ctx context.Context, s *testbed.Site, addr netip.Addr, port int) (func() (uint64, error), error) {
	var ns string
	for _, b := range s.Backends {
		if b.Address == addr {
			ns = b.NetNS
		}
	}
	if ns == "" {
		return nil, fmt.Errorf("no backend %s in the sandbox", addr)
	}
	rules := fmt.Sprintf("table inet lbscale {\n chain in {\n  type filter hook input priority 0;\n  tcp dport %d tcp flags & (syn|ack) == syn counter\n }\n}\n", port)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nft in %s: %v: %s", ns, err, out)
	}
	re := regexp.MustCompile(`counter packets (\d+)`)
	return func() (uint64, error) {
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "list", "table", "inet", "lbscale").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("nft list in %s: %v: %s", ns, err, out)
		}
		m := re.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("no counter in %s", out)
		}
		return strconv.ParseUint(string(m[1]), 10, 64)
	}, nil
}

type procSet struct {
	agent   int
	haproxy []int
}

// nodeProcs finds the agent and the HAProxy processes (masters and
// workers) of a systemd node by the node's pid namespace.
func nodeProcs(t *testing.T, s *testbed.Site, node string) procSet {
	t.Helper()
	var ps procSet
	n := s.Node(node)
	var want syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/pid", n.PID), &want); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/pid", &st) != nil || st.Ino != want.Ino || st.Dev != want.Dev {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		switch {
		case len(args) > 1 && filepath.Base(args[0]) == "lbctl" && args[1] == "agent":
			ps.agent = pid
		case filepath.Base(args[0]) == "haproxy":
			ps.haproxy = append(ps.haproxy, pid)
		}
	}
	return ps
}

const clkTck = 100

func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, nil
}

// statusKB reads a field of /proc/PID/status (kB, or a plain number).
func statusKB(pid int, field string) float64 {
	return procField(fmt.Sprintf("/proc/%d/status", pid), field)
}

// rollupKB reads a field of /proc/PID/smaps_rollup in kB.
func rollupKB(pid int, field string) float64 {
	return procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), field)
}

func procField(path, field string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		// "Field: 12 kB" in /proc, "field 12" in cgroup files.
		if v, ok := strings.CutPrefix(l, field); ok && (strings.HasPrefix(v, ":") || strings.HasPrefix(v, " ")) {
			f := strings.Fields(strings.TrimPrefix(v, ":"))
			if len(f) > 0 {
				x, _ := strconv.ParseFloat(f[0], 64)
				return x
			}
		}
	}
	return 0
}

func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	x, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return x
}

// readCPU reads usage_usec of the node's cgroup and of its HAProxy slice,
// init.scope and agent service (zero for one that does not exist yet).
func readCPU(cg string) NodeCPU {
	usage := func(rel string) time.Duration {
		return time.Duration(procField(filepath.Join(cg, rel, "cpu.stat"), "usage_usec")) * time.Microsecond
	}
	return NodeCPU{Total: usage("."), HAProxy: usage(`system.slice/system-lb\x2dhaproxy.slice`),
		Systemd: usage("init.scope"), Agent: usage("system.slice/" + testbed.AgentUnitName)}
}
