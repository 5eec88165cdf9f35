package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/push"
	"github.com/lbctl/lbctl/nodeapi"
	"github.com/lbctl/lbctl/test/testbed"
)

// sandbox is the site every subtest of TestSandbox shares.
type sandbox struct {
	s     *testbed.Site
	m     *model.Site
	lbctl string
	// backend runs the sandbox's backend servers (lbctl-testbed serve-backend).
	backend []string
	work    string
	pubkey  string
	key     string
	// prefixes are the router routes of every VIP address of the model
	// (ECMP through every node), primaries those of primary/backup VIPs.
	prefixes  []netip.Prefix
	primaries []primaryRoute
}

// primaryRoute is the route of a primary/backup VIP address and the host
// name of its primary node.
type primaryRoute struct {
	prefix netip.Prefix
	node   string
}

// Addresses of examples/campus.
var (
	wikiVIP    = netip.MustParseAddr("192.0.2.11")
	typo3VIP   = netip.MustParseAddr("192.0.2.10")
	typo3VIP6  = netip.MustParseAddr("2001:db8:10::10")
	smtpVIP    = netip.MustParseAddr("192.0.2.20")
	smtpVIP6   = netip.MustParseAddr("2001:db8:20::20")
	ghostVIP   = netip.MustParseAddr("192.0.2.41")
	ghostRoute = netip.PrefixFrom(ghostVIP, 32)
)

// skipUnlessSandbox skips an end-to-end test that cannot build the
// sandbox here: -short, not root on Linux, or a tool missing.
func skipUnlessSandbox(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end: skipped with -short")
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux: builds the sandbox (network namespaces, systemd as PID 1 per LB node)")
	}
	for _, tool := range []string{"ip", "nsenter", "unshare", "bird", "haproxy", "/lib/systemd/systemd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps): %v", tool, err)
		}
	}
}

func TestSandbox(t *testing.T) {
	skipUnlessSandbox(t)
	sb := setUp(t)

	t.Run("ECMPRoutes", sb.testECMPRoutes)
	t.Run("Status", sb.testStatus)
	t.Run("RedirectToHTTPS", sb.testRedirect)
	t.Run("HTTPSCertificates", sb.testHTTPS)
	t.Run("ProxyProtocol", sb.testProxyProtocol)
	t.Run("IPv6", sb.testIPv6)
	t.Run("Spread", sb.testSpread)
	t.Run("Logs", sb.testLogs)
	t.Run("BadBundleRejected", sb.testBadBundle)
	t.Run("PushStopsAtFailedCanary", sb.testPushCanary)
	t.Run("UnhealthyVIPRolledBack", sb.testUnhealthyRolledBack)
	t.Run("Failover", sb.testFailover)
	t.Run("VIPRestart", sb.testVIPRestart)
	t.Run("Doctor", sb.testDoctor)
	t.Run("VerifyDrift", sb.testVerifyDrift)
	t.Run("Repair", sb.testRepair)
	t.Run("Observe", sb.testObserve)
}

// setUp builds lbctl, a key pair and the campus bundle (serial 100),
// brings the sandbox up with systemd LB nodes and installs the bundle on
// both, then waits for ECMP routes to every VIP.
func setUp(t *testing.T) *sandbox { return setUpTree(t, nil) }

// setUpTree is setUp with a variant of examples/campus: edit, when not nil,
// changes a copy of the tree before it is resolved.
func setUpTree(t *testing.T, edit func(tree string)) *sandbox {
	ctx := t.Context()
	start := time.Now()
	sb := &sandbox{work: t.TempDir()}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bins, err := testbed.BuildBinaries(ctx, root, sb.work)
	if err != nil {
		t.Fatal(err)
	}
	sb.lbctl, sb.backend = bins.LBCTL, bins.BackendCommand()
	t.Logf("lbctl built in %v", time.Since(start).Round(time.Millisecond))
	sb.run(t, "keygen", "--unencrypted", filepath.Join(sb.work, "admin"))
	sb.key, sb.pubkey = filepath.Join(sb.work, "admin.key"), filepath.Join(sb.work, "admin.pub")
	tree := filepath.Join(root, "examples", "campus")
	if edit != nil {
		tree = copyTree(t, filepath.Join(sb.work, "campus"))
		edit(tree)
	}
	b, err := sb.lbctlCmd(ctx, "resolve", tree, "--json").Output()
	if err != nil {
		t.Fatalf("lbctl resolve: %v", err)
	}
	if sb.m, err = model.Decode(b); err != nil {
		t.Fatal(err)
	}
	for _, v := range sb.m.VIPs {
		for _, a := range v.Addresses {
			addr := a
			if v.BGP.Primary != "" {
				// A primary/backup VIP has one next hop, its primary's.
				sb.primaries = append(sb.primaries, primaryRoute{netip.PrefixFrom(addr, addr.BitLen()), v.BGP.Primary})
				continue
			}
			sb.prefixes = append(sb.prefixes, netip.PrefixFrom(addr, addr.BitLen()))
		}
	}
	v1 := sb.bundle(t, tree, 100)

	up := time.Now()
	opts := testbed.Options{
		Dir:            filepath.Join(sb.work, "sandbox"),
		Prefix:         fmt.Sprintf("lbe2e%03x-", rand.IntN(1<<12)),
		BackendCommand: sb.backend,
		LaunchNode:     testbed.SystemdNodes{}.Launch,
		Timeout:        60 * time.Second,
	}
	sb.s, err = testbed.Up(ctx, sb.m, opts)
	if err != nil {
		t.Fatalf("sandbox up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			sb.dumpNodes(t)
		}
		if err := sb.s.Down(context.Background()); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	})
	t.Logf("sandbox up in %v (prefix %s)", time.Since(up).Round(time.Millisecond), opts.Prefix)

	inst := time.Now()
	// The agent runs under the unit the Debian package ships.
	unit, err := os.ReadFile(filepath.Join(root, "packaging", "systemd", testbed.AgentUnitName))
	if err != nil {
		t.Fatalf("shipped agent unit: %v", err)
	}
	sb.eachNode(t, func(node string) error {
		n := sb.s.Node(node)
		return sb.s.Provision(ctx, node, testbed.NodeSetup{LBCTL: sb.lbctl, TrustedKeys: []string{sb.pubkey},
			Config: testbed.NodeConfig(n.Hostname, 20*time.Second), AgentUnit: string(unit)})
	})
	outs := sb.installAll(t, v1)
	for node, r := range outs {
		if r.err != nil || !strings.Contains(r.out, "installed release 100") {
			t.Fatalf("install on %s: %v\n%s", node, r.err, r.out)
		}
	}
	t.Logf("release 100 installed on both nodes in %v", time.Since(inst).Round(time.Millisecond))
	if err := sb.s.WaitECMP(ctx, sb.prefixes, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range sb.primaries {
		if p.prefix.Addr().Is4() {
			if err := sb.s.WaitRouteVia(ctx, p.prefix, []string{sb.s.NodeOfHost(p.node)}, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("set up in %v", time.Since(start).Round(time.Millisecond))
	return sb
}

func (sb *sandbox) lbctlCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, sb.lbctl, args...)
}

// run runs lbctl on the host and fails t on an error.
func (sb *sandbox) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := sb.lbctlCmd(t.Context(), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("lbctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// bundle builds and signs the tree with the given serial. The build time is
// fixed, long past, so the bundle asks for no expiry explicitly (the default
// 30 days after creation would have it refused).
func (sb *sandbox) bundle(t *testing.T, tree string, serial int) []byte {
	t.Helper()
	out := filepath.Join(sb.work, fmt.Sprintf("bundle-%d", serial))
	sb.run(t, "build", tree, "--key", sb.key, "--serial", fmt.Sprint(serial), "--time", "1700000000", "--expires", "never", "-o", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eachNode runs fn for lb1 and lb2 at once and fails t on any error.
func (sb *sandbox) eachNode(t *testing.T, fn func(node string) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(sb.s.Nodes))
	for i, n := range sb.s.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(n.Name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

type installResult struct {
	out string
	err error
}

// installAll runs `lbctl install` with the bundle on both nodes at once.
func (sb *sandbox) installAll(t *testing.T, bundle []byte) map[string]installResult {
	t.Helper()
	var mu sync.Mutex
	res := map[string]installResult{}
	var wg sync.WaitGroup
	for _, n := range sb.s.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := sb.s.Install(t.Context(), n.Name, bundle)
			mu.Lock()
			res[n.Name] = installResult{string(out), err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

// nodeStatus is what `lbctl status --json` prints.
type nodeStatus = nodeapi.Status

func (sb *sandbox) status(t *testing.T, node string) *nodeStatus {
	t.Helper()
	out, err := sb.s.Lbctl(t.Context(), node, "status", "--json")
	if err != nil {
		t.Fatalf("lbctl status on %s: %v", node, err)
	}
	var st nodeStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("lbctl status --json on %s: %v\n%s", node, err, out)
	}
	return &st
}

// pids maps every VIP of both nodes ("lb1 192.0.2.10") to its HAProxy
// main PID.
func (sb *sandbox) pids(t *testing.T) map[string]uint32 {
	t.Helper()
	out := map[string]uint32{}
	for _, n := range sb.s.Nodes {
		for _, v := range sb.status(t, n.Name).VIPs {
			out[n.Name+" "+v.Name] = v.MainPID
		}
	}
	return out
}

// wantUnchanged checks that both nodes still run release 100 with the
// same HAProxy processes and that the router still has ECMP routes to
// every VIP.
func (sb *sandbox) wantUnchanged(t *testing.T, before map[string]uint32) {
	t.Helper()
	for _, n := range sb.s.Nodes {
		if st := sb.status(t, n.Name); st.Serial != 100 {
			t.Errorf("%s: release %d, want 100 (unchanged)", n.Name, st.Serial)
		}
	}
	if after := sb.pids(t); !mapsEqual(before, after) {
		t.Errorf("HAProxy main PIDs changed:\nbefore %v\nafter  %v", before, after)
	}
	if err := sb.s.WaitECMP(t.Context(), sb.prefixes, 5*time.Second); err != nil {
		t.Error(err)
	}
}

func mapsEqual(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (sb *sandbox) dumpNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range sb.s.Nodes {
		if out, err := sb.s.Lbctl(ctx, n.Name, "status"); err == nil {
			t.Logf("%s: lbctl status:\n%s", n.Name, out)
		}
		if out, err := sb.s.NodeRun(ctx, n.Name, nil, "journalctl", "--no-pager", "-n", "60", "-o", "short-precise"); err == nil {
			t.Logf("%s: journal:\n%s", n.Name, out)
		}
	}
	if st, err := sb.s.Status(ctx); err == nil {
		for _, r := range st.Routes {
			t.Logf("router: %s", r)
		}
	}
}

func (sb *sandbox) client(t *testing.T, host string, vip netip.Addr) *http.Client {
	t.Helper()
	c, err := sb.s.HTTPClient(map[string]netip.Addr{host: vip})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// get requests url and returns the response and the backend's answer.
func get(t *testing.T, c *http.Client, url string) (*http.Response, map[string]string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp, testbed.ParseAnswer(strings.SplitN(string(b), "\n", 2)[0])
}

func (sb *sandbox) testECMPRoutes(t *testing.T) {
	rs, err := sb.s.Routes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		var via []string
		for _, h := range r.NextHops {
			via = append(via, h.Via.String())
		}
		want := "198.51.100.11 198.51.100.12"
		if r.Prefix.Addr().Is6() {
			want = "2001:db8:ffff::11 2001:db8:ffff::12"
		}
		if strings.Join(via, " ") != want {
			t.Errorf("router: %s, want next hops %s", r, want)
		}
	}
	if len(rs) != len(sb.prefixes) {
		t.Errorf("router has %d VIP routes, want %d: %v", len(rs), len(sb.prefixes), rs)
	}
}

func (sb *sandbox) testStatus(t *testing.T) {
	for _, n := range sb.s.Nodes {
		st := sb.status(t, n.Name)
		t.Logf("%s: release %d, agent %s, socket probe %q", n.Name, st.Serial, st.Agent, st.Probe)
		if st.Serial != 100 || st.Agent != "running" || len(st.VIPs) != len(sb.m.VIPs) {
			t.Errorf("%s: release %d, agent %q, %d VIPs; want 100, running, %d", n.Name, st.Serial, st.Agent, len(st.VIPs), len(sb.m.VIPs))
		}
		for _, v := range st.VIPs {
			if v.Unit != "active/running" || v.MainPID == 0 || !v.Healthy || !v.Announced {
				t.Errorf("%s: VIP %s: unit %s PID %d healthy %v announced %v %v", n.Name, v.Name, v.Unit, v.MainPID, v.Healthy, v.Announced, v.Reasons)
			}
		}
	}
}

func (sb *sandbox) testRedirect(t *testing.T) {
	resp, _ := get(t, sb.client(t, "wiki.campus.example", wikiVIP), "http://wiki.campus.example/page?x=1")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://wiki.campus.example/page?x=1" {
		t.Errorf("http://wiki: %s Location %q, want 301 to https://wiki.campus.example/page?x=1", resp.Status, resp.Header.Get("Location"))
	}
}

func (sb *sandbox) testHTTPS(t *testing.T) {
	for _, c := range []struct {
		host     string
		vip      netip.Addr
		backends []string
	}{
		{"wiki.campus.example", wikiVIP, []string{"wiki1", "wiki2"}},
		{"physik.campus.example", typo3VIP, []string{"typo3-web1.campus.example", "typo3-web2.campus.example", "typo3-web3.campus.example"}},
		{"chemie.campus.example", typo3VIP, []string{"typo3-web1.campus.example", "typo3-web2.campus.example", "typo3-web3.campus.example"}},
		{"intranet.campus.example", netip.MustParseAddr("192.0.2.12"), []string{"intra1", "intra2"}},
	} {
		// The client verifies the chain against the testbed CA and the
		// name: a wrong certificate fails the request.
		resp, ans := get(t, sb.client(t, c.host, c.vip), "https://"+c.host+"/")
		if resp.StatusCode != http.StatusOK || resp.TLS == nil {
			t.Errorf("https://%s: %s", c.host, resp.Status)
			continue
		}
		leaf := resp.TLS.PeerCertificates[0]
		if err := leaf.VerifyHostname(c.host); err != nil {
			t.Errorf("https://%s: certificate %v: %v", c.host, leaf.DNSNames, err)
		}
		if !slices.Contains(c.backends, ans["backend"]) || ans["host"] != c.host || ans["xff"] != testbed.Client4.String() {
			t.Errorf("https://%s: backend saw %v, want one of %v with Host %s and X-Forwarded-For %s", c.host, ans, c.backends, c.host, testbed.Client4)
		}
		t.Logf("https://%s: certificate %s (SANs %v), answered by %s through %s", c.host, leaf.Subject.CommonName, leaf.DNSNames, ans["backend"], ans["src"])
	}
}

func (sb *sandbox) testProxyProtocol(t *testing.T) {
	for _, c := range []struct {
		vip    netip.Addr
		client netip.Addr
	}{{smtpVIP, testbed.Client4}, {smtpVIP6, testbed.Client6}} {
		conn, err := sb.s.Dial(t.Context(), "tcp", netip.AddrPortFrom(c.vip, 25).String())
		if err != nil {
			t.Fatalf("smtp %s: %v", c.vip, err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		fmt.Fprintf(conn, "QUIT\r\n")
		conn.Close()
		if err != nil {
			t.Fatalf("smtp %s: greeting: %v", c.vip, err)
		}
		ans := testbed.ParseAnswer(line)
		src, err := netip.ParseAddrPort(ans["proxy-src"])
		if !strings.HasPrefix(line, "220 ") || err != nil || src.Addr() != c.client || !strings.HasPrefix(ans["backend"], "mx") {
			t.Errorf("smtp %s: greeting %q: want 220 from mx1/mx2 with PROXY source %s", c.vip, strings.TrimSpace(line), c.client)
		}
	}
}

func (sb *sandbox) testIPv6(t *testing.T) {
	resp, ans := get(t, sb.client(t, "www.campus.example", typo3VIP6), "https://www.campus.example/")
	if resp.StatusCode != http.StatusOK || ans["xff"] != testbed.Client6.String() || !strings.HasPrefix(ans["backend"], "typo3-web") {
		t.Errorf("https://www.campus.example/ over IPv6: %s %v, want 200 from a typo3 backend with X-Forwarded-For %s", resp.Status, ans, testbed.Client6)
	}
}

func (sb *sandbox) testSpread(t *testing.T) {
	res, err := testbed.Traffic{URL: "https://www.campus.example/", Hosts: map[string]netip.Addr{"www.campus.example": typo3VIP},
		Count: 60, Interval: 10 * time.Millisecond}.Run(t.Context(), sb.s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests: by node %v, by backend %v", res.Requests, res.ByNode, res.ByBackend)
	if res.Failed != 0 || res.ByNode["lb1"] == 0 || res.ByNode["lb2"] == 0 || len(res.ByBackend) != 3 {
		t.Errorf("%d of %d failed %v; by node %v, by backend %v: want every request served, through both nodes, by the 3 typo3 backends",
			res.Failed, res.Requests, res.Errors, res.ByNode, res.ByBackend)
	}
}

// copyTree copies examples/campus for a variant.
func copyTree(t *testing.T, dst string) string {
	t.Helper()
	src, _ := filepath.Abs("../../examples/campus")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// testBadBundle installs a bundle whose wiki service names a certificate
// the nodes do not have: HAProxy's own check refuses the new config, so
// both nodes refuse the release before changing anything.
func (sb *sandbox) testBadBundle(t *testing.T) {
	tree := copyTree(t, filepath.Join(t.TempDir(), "campus"))
	appendFile(t, filepath.Join(tree, "web", "wiki.yaml"), "tls:\n  certificate: wiki-2027.campus.example\n")
	bad := sb.bundle(t, tree, 200)
	before := sb.pids(t)
	for node, r := range sb.installAll(t, bad) {
		if r.err == nil {
			t.Errorf("%s: the broken bundle was installed:\n%s", node, r.out)
			continue
		}
		if !strings.Contains(r.out, "validate release 200") || !strings.Contains(r.out, "wiki-2027.campus.example.pem") {
			t.Errorf("%s: install failed, but not for the missing certificate:\n%s", node, r.out)
		}
		t.Logf("%s refused release 200: %s", node, firstLine(r.out))
	}
	sb.wantUnchanged(t, before)
}

// ghostTree is a copy of examples/campus with a VIP (192.0.2.41, service
// legacy/ghost) whose only backend does not exist: it never gets healthy.
func ghostTree(t *testing.T) string {
	t.Helper()
	tree := copyTree(t, filepath.Join(t.TempDir(), "campus"))
	if err := os.WriteFile(filepath.Join(tree, "legacy", "ghost.yaml"), []byte(`# Its backend does not exist: it never gets healthy.
fqdn: ghost.campus.example
owner: erp-team
mode: tcp
listeners: [7000]
backend:
  group: legacy_ghost
  check: tcp
`), 0o644); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(tree, "campus.zone"), "ghost           IN A    "+ghostVIP.String()+"\n")
	inv := filepath.Join(tree, "inventory.yaml")
	b, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "    legacy_erp:\n", "    legacy_ghost:\n      hosts:\n        ghost1: {ansible_host: 203.0.113.69}\n    legacy_erp:\n", 1))
	if err := os.WriteFile(inv, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return tree
}

// testUnhealthyRolledBack installs a bundle adding a VIP (192.0.2.41)
// whose only backend does not exist while clients keep using two other
// VIPs: each node starts the new HAProxy, its health gate never passes,
// and the node rolls back to release 100. No request to the other VIPs
// fails, no route to the new VIP ever reaches the router, and the other
// VIPs' HAProxy processes are untouched.
func (sb *sandbox) testUnhealthyRolledBack(t *testing.T) {
	ghost := sb.bundle(t, ghostTree(t), 300)
	before := sb.pids(t)

	ctx := t.Context()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loads := map[string]*testbed.TrafficResult{}
	var mu sync.Mutex
	for host, vip := range map[string]netip.Addr{"wiki.campus.example": wikiVIP, "www.campus.example": typo3VIP} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := testbed.Traffic{URL: "https://" + host + "/", Hosts: map[string]netip.Addr{host: vip},
				Interval: 25 * time.Millisecond, Duration: 2 * time.Minute, Stop: stop}.Run(ctx, sb.s)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			loads[host] = res
			mu.Unlock()
		}()
	}
	// Watch the router: the new VIP must never be announced.
	seen := make(chan bool, 1)
	go func() {
		announced := false
		for {
			select {
			case <-stop:
				seen <- announced
				return
			case <-time.After(50 * time.Millisecond):
			}
			if rs, err := sb.s.Routes(ctx); err == nil && slices.ContainsFunc(rs, func(r testbed.Route) bool { return r.Prefix == ghostRoute }) {
				announced = true
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	results := sb.installAll(t, ghost)
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if <-seen {
		t.Errorf("the router learned a route to %s, which never was healthy", ghostVIP)
	}
	for node, r := range results {
		if r.err == nil {
			t.Errorf("%s: the bundle with a VIP that never gets healthy was installed:\n%s", node, r.out)
			continue
		}
		if !strings.Contains(r.out, "health gate") || !strings.Contains(r.out, "legacy.ghost") || !strings.Contains(r.out, "changes rolled back") {
			t.Errorf("%s: install failed, but not at the health gate of the new VIP:\n%s", node, r.out)
		}
	}
	t.Logf("both nodes rolled back release 300 within %v", took.Round(time.Millisecond))
	for host, res := range loads {
		t.Logf("%s during the install: %d requests, %d failed, by node %v", host, res.Requests, res.Failed, res.ByNode)
		if res.Failed != 0 || res.Requests < 20 {
			t.Errorf("%s during the install: %d of %d requests failed %v", host, res.Failed, res.Requests, res.Errors)
		}
	}
	sb.wantUnchanged(t, before)
	for _, n := range sb.s.Nodes {
		st := sb.status(t, n.Name)
		if st.Last == nil || st.Last.To != 300 || st.Last.Result != "rolled-back" {
			t.Errorf("%s: last install %+v, want 100 -> 300 rolled-back", n.Name, st.Last)
		}
		if out, _ := sb.s.NodeRun(ctx, n.Name, nil, "systemctl", "is-active", "lb-haproxy@192.0.2.41.service"); strings.TrimSpace(string(out)) == "active" {
			t.Errorf("%s: lb-haproxy@192.0.2.41 still active after the rollback", n.Name)
		}
		if out, err := sb.s.NodeRun(ctx, n.Name, nil, "ip", "-o", "addr", "show", "dev", "lo"); err != nil || strings.Contains(string(out), ghostVIP.String()+"/") {
			t.Errorf("%s: %s still on lo after the rollback (%v):\n%s", n.Name, ghostVIP, err, out)
		}
	}
}

// testFailover kills lb1's HAProxy for the wiki VIP while a client keeps
// making new connections: lb1's route must be withdrawn at once, every
// request must succeed (through lb2; a connection refused or reset before
// any answer is retried once, as a browser would), and lb1 must announce
// the VIP again once systemd restarted HAProxy.
func (sb *sandbox) testFailover(t *testing.T) {
	ctx := t.Context()
	done := make(chan *testbed.TrafficResult, 1)
	go func() {
		res, err := testbed.Traffic{URL: "https://wiki.campus.example/", Hosts: map[string]netip.Addr{"wiki.campus.example": wikiVIP},
			Interval: 20 * time.Millisecond, Duration: 7 * time.Second, RetryRefused: true}.Run(ctx, sb.s)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(1500 * time.Millisecond)
	f, err := sb.s.KillHAProxy(ctx, "lb1", wikiVIP.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lb1: SIGKILL to %s main PID %d: route via %s withdrawn at the router after %v", f.Unit, f.MainPID, f.Via, f.Withdrawn.Round(100*time.Microsecond))
	back, err := sb.s.WaitBack(ctx, f, 30*time.Second)
	if err != nil {
		t.Error(err)
	} else {
		t.Logf("lb1 announced %s again %v later (systemd restarted HAProxy)", wikiVIP, back.Round(time.Millisecond))
	}
	res := <-done
	if res == nil {
		return
	}
	t.Logf("during the failover: %d requests, %d failed, %d retried, by node %v, per second %v", res.Requests, res.Failed, res.Retried, res.ByNode, res.Seconds)
	if res.Failed != 0 || res.ByNode["lb2"] == 0 || res.Requests < 50 {
		t.Errorf("during the failover %d of %d requests failed %v (by node %v)", res.Failed, res.Requests, res.Errors, res.ByNode)
	}
	for _, v := range sb.status(t, "lb1").VIPs {
		if v.Name == wikiVIP.String() && (v.MainPID == uint32(f.MainPID) || !v.Healthy || !v.Announced) {
			t.Errorf("lb1 after the failover: VIP %s PID %d (killed %d) healthy %v announced %v", v.Name, v.MainPID, f.MainPID, v.Healthy, v.Announced)
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// nodeRunner runs the remote side of `lbctl push` on the sandbox's LB
// nodes (inside their namespaces) instead of over ssh; push.SSH itself is
// tested with a stand-in ssh in bundle/push.
type nodeRunner struct{ sb *sandbox }

func (r nodeRunner) Run(ctx context.Context, host string, args []string, stdin []byte) ([]byte, error) {
	argv := append([]string{testbed.NodeLBCTL}, args...)
	out, err := r.sb.s.NodeRun(ctx, host, bytes.NewReader(stdin), argv...)
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", host, err, out)
	}
	return out, nil
}

// testPushCanary pushes a bundle whose certificate the nodes lack: the
// canary (lb1) refuses it, the rollout stops, and lb2 is never asked.
func (sb *sandbox) testPushCanary(t *testing.T) {
	tree := copyTree(t, filepath.Join(t.TempDir(), "campus"))
	appendFile(t, filepath.Join(tree, "web", "wiki.yaml"), "tls:\n  certificate: wiki-2028.campus.example\n")
	bad := sb.bundle(t, tree, 300)
	before := sb.pids(t)
	var progress bytes.Buffer
	res, err := push.Push(t.Context(), bad, []string{"lb1", "lb2"}, nodeRunner{sb},
		push.Options{Args: []string{"--config", testbed.NodeConfigPath}, HealthTimeout: 20 * time.Second, Progress: &progress})
	t.Logf("push:\n%s", progress.String())
	if !errors.Is(err, push.ErrStopped) || !strings.Contains(err.Error(), "wiki-2028.campus.example") {
		t.Fatalf("push of a bundle the canary refuses: %v", err)
	}
	if res.Nodes[0].Status != "failed" || res.Nodes[1].Status != "skipped" {
		t.Fatalf("rollout result %+v", res.Nodes)
	}
	// lb2 never saw the bundle: no install log line for serial 300.
	if st := sb.status(t, "lb2"); st.Last != nil && st.Last.To == 300 {
		t.Fatalf("lb2 was asked to install release 300: %+v", st.Last)
	}
	sb.wantUnchanged(t, before)
}

// testVerifyDrift runs the rescue CLI's drift check on lb2: clean after
// the installs, then an edited HAProxy config and a rule added by hand to
// the lbctl table are both reported with exit status 1.
func (sb *sandbox) testVerifyDrift(t *testing.T) {
	verify := func() (string, error) {
		out, err := sb.s.Lbctl(t.Context(), "lb2", "verify", "--config", testbed.NodeConfigPath)
		return string(out), err
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "matches release 100") {
		t.Fatalf("verify on a clean node: %v\n%s", err, out)
	}
	sh := func(cmd string) {
		if out, err := sb.s.NodeRun(t.Context(), "lb2", nil, "sh", "-c", cmd); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, out)
		}
	}
	sh("echo '# edited by hand' >> /etc/lbctl/vips/192.0.2.11/haproxy.cfg")
	sh("nft add rule inet lbctl input tcp dport 2222 accept")
	out, err := verify()
	if err == nil {
		t.Fatalf("verify after tampering exited 0:\n%s", out)
	}
	for _, want := range []string{"vip 192.0.2.11: haproxy.cfg differs from release 100", "nftables:"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("verify:\n%s", out)
}
