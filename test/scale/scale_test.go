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
// nodes, and measures on both nodes the cold install (with where its time
// goes, from the install's step lines), incremental installs that change
// one service, failover and re-announce (SIGKILL of a VIP's HAProxy on lb1,
// LBCTL_SCALE_TRIALS times), the agent's CPU and RSS and the health checks
// reaching one backend server shared by many VIPs over an idle window
// (LBCTL_SCALE_IDLE), HAProxy's processes, threads and PSS, and BIRD's
// reconfigure time. It writes the Markdown table and growth curves to
// LBCTL_SCALE_OUT (default: the test log).
//
// LBCTL_SCALE_PLAIN=500 runs the sizes listed there on plain-namespace
// nodes (no systemd: the install is not measured there, see the docs).
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
	b := newBench(t)
	var rows []*Row
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < CampusVIPs {
			t.Fatalf("LBCTL_SCALE_SIZES: %q: want VIP counts of at least %d", f, CampusVIPs)
		}
		r := b.run(t, n)
		rows = append(rows, r)
		t.Logf("size %d done: %+v", n, *r)
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

func (b *bench) run(t *testing.T, vips int) *Row {
	ctx := t.Context()
	r := &Row{VIPs: vips, Load: loadavg(), Cold: map[string]time.Duration{}, Incr: map[string]time.Duration{}}
	tree := filepath.Join(b.work, fmt.Sprintf("site%d", vips))
	svcs, err := Generate(filepath.Join(b.root, "examples", "campus"), tree, vips)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		if s.Kind == Shared {
			r.SharedBy++
		}
	}
	var m *model.Site
	if m, err = model.Decode(b.lbctlRun(t, "resolve", tree, "--json")); err != nil {
		t.Fatal(err)
	}
	var prefixes []netip.Prefix
	for _, v := range m.VIPs {
		for _, a := range v.Addresses {
			addr := a
			prefixes = append(prefixes, netip.PrefixFrom(addr, addr.BitLen()))
		}
	}
	serial := 100
	cold := b.bundle(t, tree, serial)

	opts := testbed.Options{
		Dir:            filepath.Join(b.work, fmt.Sprintf("sandbox%d", vips)),
		Prefix:         fmt.Sprintf("lbsc%03x-", rand.IntN(1<<12)),
		BackendCommand: b.backend,
		LaunchNode:     testbed.SystemdNodes{}.Launch,
		Timeout:        120 * time.Second,
	}
	s, err := testbed.Up(ctx, m, opts)
	if err != nil {
		t.Fatalf("sandbox up (%d VIPs): %v", vips, err)
	}
	defer func() {
		if err := s.Down(context.Background()); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	}()
	nodes := []string{}
	for _, n := range s.Nodes {
		nodes = append(nodes, n.Name)
	}
	eachNode(t, nodes, func(node string) error {
		return s.Provision(ctx, node, testbed.NodeSetup{LBCTL: b.lbctl, TrustedKeys: []string{b.pubkey},
			Config: testbed.NodeConfig(s.Node(node).Hostname, 10*time.Minute), AgentUnit: b.agentUnit})
	})
	// The shared group exists from 18 VIPs on (one generated VIP in ten).
	counter := func() (uint64, error) { return 0, nil }
	if r.SharedBy > 0 {
		if counter, err = countChecks(ctx, s, BackendAddr(BackendHosts), SharedPort); err != nil {
			t.Fatal(err)
		}
	}

	// Cold install on both nodes at once.
	profiles := map[string]Profile{}
	var mu sync.Mutex
	eachNode(t, nodes, func(node string) error {
		d, p, err := timedInstall(ctx, s, node, cold)
		mu.Lock()
		defer mu.Unlock()
		r.Cold[node], profiles[node] = d, p
		return err
	})
	r.Profile = profiles[nodes[0]]
	r.LoadCold = loadavg()
	ecmp := time.Now()
	if err := s.WaitECMP(ctx, prefixes, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	r.ECMP = time.Since(ecmp)
	t.Logf("%d VIPs: cold install %v, profile of %s %+v, ECMP %v", vips, r.Cold, nodes[0], r.Profile, r.ECMP)

	// Incremental installs: web/wiki's balance algorithm, back and forth.
	wiki := filepath.Join(tree, "web", "wiki.yaml")
	orig, err := os.ReadFile(wiki)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(orig), "balance: source", "balance: roundrobin", 1)
	incr := map[string][]time.Duration{}
	for i := range 3 {
		data := changed
		if i%2 == 1 {
			data = string(orig)
		}
		if err := os.WriteFile(wiki, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		serial++
		bun := b.bundle(t, tree, serial)
		eachNode(t, nodes, func(node string) error {
			d, p, err := timedInstall(ctx, s, node, bun)
			mu.Lock()
			defer mu.Unlock()
			incr[node] = append(incr[node], d)
			if node == nodes[0] {
				r.IncrReloads = p.Steps["reload-vip"] + p.Steps["restart-unit"] + p.Steps["start-unit"]
			}
			return err
		})
	}
	for n, ds := range incr {
		r.Incr[n] = median(ds)
	}
	t.Logf("%d VIPs: incremental installs %v (%d units started or reloaded)", vips, incr, r.IncrReloads)

	// Failover and re-announce of wiki on lb1, once every route is back
	// after the incremental installs.
	if err := s.WaitECMP(ctx, prefixes, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	wikiPrefix := []netip.Prefix{netip.MustParsePrefix("192.0.2.11/32")}
	for range b.trials {
		if err := s.WaitECMP(ctx, wikiPrefix, time.Minute); err != nil {
			t.Fatal(err)
		}
		f, err := s.KillHAProxy(ctx, nodes[0], "192.0.2.11", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		back, err := s.WaitBack(ctx, f, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r.Failover = append(r.Failover, f.Withdrawn)
		r.Reannounce = append(r.Reannounce, back)
		t.Logf("%d VIPs: failover trial %d: withdrawn %v, back %v", vips, len(r.Failover), f.Withdrawn, back)
		time.Sleep(200 * time.Millisecond)
	}

	// Idle window: agent CPU and RSS, checks at the shared server.
	procs := nodeProcs(t, s, nodes[0])
	agent := procs.agent
	if agent == 0 {
		t.Fatalf("no agent process on %s", nodes[0])
	}
	cpu0, _ := cpuTicks(agent)
	c0, err := counter()
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
	c1, err := counter()
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	r.AgentCPU = float64(cpu1-cpu0) / clkTck / elapsed.Seconds()
	r.AgentRSSMB = maxRSS
	r.Checks = float64(c1-c0) / elapsed.Seconds()

	// HAProxy footprint on lb1.
	procs = nodeProcs(t, s, nodes[0])
	r.HAProxyProcs = len(procs.haproxy)
	for _, pid := range procs.haproxy {
		r.HAProxyThreads += int(statusKB(pid, "Threads"))
		r.HAProxyPSSMB += rollupKB(pid, "Pss") / 1024
	}

	// BIRD reconfigure on lb1 (same config: what a reconfigure costs).
	var bird []time.Duration
	for range 5 {
		st := time.Now()
		if _, err := s.NodeRun(ctx, nodes[0], nil, "birdc", "-s", testbed.NodeBirdSocket, "configure"); err != nil {
			t.Fatal(err)
		}
		bird = append(bird, time.Since(st))
	}
	r.BirdConfigure = median(bird)
	return r
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

// timedInstall runs `lbctl install` on the node and times it and its steps
// from the step lines it prints on standard error.
func timedInstall(ctx context.Context, s *testbed.Site, node string, bundle []byte) (time.Duration, Profile, error) {
	p := Profile{ByKind: map[string]time.Duration{}, Steps: map[string]int{}}
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
	if len(marks) == 0 {
		p.Before = end.Sub(start)
		return end.Sub(start), p, nil
	}
	p.Before = marks[0].at.Sub(start)
	for i, m := range marks {
		next := end
		if i+1 < len(marks) {
			next = marks[i+1].at
		}
		p.ByKind[m.kind] += next.Sub(m.at)
		p.Steps[m.kind]++
	}
	return end.Sub(start), p, nil
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
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(v)
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
