package e2e_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbctl/lbctl/test/testbed"
)

// erpVIP is examples/campus's transparent ERP service (tcp 3200, 3300).
var erpVIP = netip.MustParseAddr("192.0.2.40")

// TestHandoff is issue 17 on the sandbox: connections survive a drain and
// an undrain under the router's ECMP, and a transparent VIP answers through
// both nodes although the backends' gateway is lb1.
func TestHandoff(t *testing.T) {
	skipUnlessSandbox(t)
	sb := setUp(t)
	sb.checkHandoffActive(t)
	t.Run("DrainUndrain", sb.testDrainUndrain)
	t.Run("DrainUndrainIPv6", sb.testDrainUndrainIPv6)
	t.Run("Transparent", sb.testTransparentHandoff)
	t.Run("InstallRemovesAndAddsVIP", sb.testInstallRemovesAndAddsVIP)
	// After the previous sub-test lb1 runs the packaged agent unit.
	t.Run("AgentKilledWhileForwarding", sb.testAgentKilledWhileForwarding)
	// SIGKILL failover with the handoff programs attached: still
	// milliseconds (figure in docs/BENCHMARKS.md).
	t.Run("Failover", sb.testFailover)
}

// TestHandoffThreeNodes is the drain test on a site with three LB nodes:
// the node that gets a moved connection hands it to both others, and the
// one that owns it delivers it.
func TestHandoffThreeNodes(t *testing.T) {
	skipUnlessSandbox(t)
	sb := setUpTree(t, func(tree string) {
		lb3 := "hostname: lb3\nrouter_id: 198.51.100.13\nasn: 65000\nroute_reflectors:\n  - {name: rr1, address: 198.51.100.2, asn: 65000}\nbfd: true\naddresses: [198.51.100.13, \"2001:db8:ffff::13\"]\n"
		if err := os.WriteFile(filepath.Join(tree, "nodes", "lb3.yaml"), []byte(lb3), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	if len(sb.s.Nodes) != 3 {
		t.Fatalf("sandbox has %d LB nodes, want 3", len(sb.s.Nodes))
	}
	sb.checkHandoffActive(t)
	t.Run("DrainUndrain", sb.testDrainUndrain)
}

// keepAlive is one long-lived HTTPS connection to www.campus.example that
// sends a request every second until stop is closed.
type keepAlive struct {
	id    int
	vip   netip.Addr // www's address the connection goes to
	via   string     // the node the first answer came through
	n     int        // answered requests
	err   error      // why it broke
	start time.Time
}

func (sb *sandbox) keepAlive(ctx context.Context, k *keepAlive, stop <-chan struct{}) {
	pool, err := sb.s.CAPool()
	if err != nil {
		k.err = err
		return
	}
	raw, err := sb.s.Dial(ctx, "tcp", netip.AddrPortFrom(k.vip, 443).String())
	if err != nil {
		k.err = fmt.Errorf("dial: %w", err)
		return
	}
	defer raw.Close()
	c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "www.campus.example"})
	r := bufio.NewReader(c)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: www.campus.example\r\n\r\n"); err != nil {
			k.err = fmt.Errorf("request %d at %.1fs: %w", k.n+1, time.Since(k.start).Seconds(), err)
			return
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			k.err = fmt.Errorf("response %d at %.1fs: %w", k.n+1, time.Since(k.start).Seconds(), err)
			return
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
			k.err = fmt.Errorf("response %d: %s close=%v %v", k.n+1, resp.Status, resp.Close, err)
			return
		}
		if k.n == 0 {
			ans := testbed.ParseAnswer(strings.SplitN(string(body), "\n", 2)[0])
			if src, err := netip.ParseAddrPort(ans["src"]); err == nil {
				k.via = sb.s.NodeOf(src.Addr())
			}
		}
		k.n++
		select {
		case <-stop:
			return
		case <-ctx.Done():
			k.err = ctx.Err()
			return
		case <-tick.C:
		}
	}
}

// testDrainUndrain: 40 keep-alive connections, one request per second
// each; lb1 drains the VIP after 8 s; 20 more connections open during the
// drain; lb1 undrains after 14 s; all 60 must keep working until 22 s.
func (sb *sandbox) testDrainUndrain(t *testing.T) { sb.drainUndrain(t, typo3VIP) }

// testDrainUndrainIPv6 is testDrainUndrain over www's IPv6 address: the
// nodes hand IPv6 off over VXLAN between their IPv4 addresses.
func (sb *sandbox) testDrainUndrainIPv6(t *testing.T) { sb.drainUndrain(t, typo3VIP6) }

func (sb *sandbox) drainUndrain(t *testing.T, addr netip.Addr) {
	vip := typo3VIP.String() // the VIP's name: drain withdraws both its addresses
	sb.keepAliveRun(t, addr, true, func(start time.Time) {
		out, err := sb.s.Lbctl(t.Context(), "lb1", "drain", "--wait", "0", vip)
		if err != nil {
			t.Fatalf("drain: %v\n%s", err, out)
		}
		t.Logf("lb1: lbctl drain %s at %.1fs: %s", vip, time.Since(start).Seconds(), strings.TrimSpace(string(out)))
	}, func(start time.Time) {
		if out, err := sb.s.Lbctl(t.Context(), "lb1", "undrain", vip); err != nil {
			t.Fatalf("undrain: %v\n%s", err, out)
		}
		t.Logf("lb1: undrain at %.1fs", time.Since(start).Seconds())
	})
}

// testInstallRemovesAndAddsVIP: the same run of keep-alive connections
// while lb1 installs a release without the VIP (with drain_time 60 s: its
// connections keep working through lb2's handoff, and the install's drain
// ends when they close), then, in a second run, while lb1 installs the
// release with the VIP again (the router moves some of lb2's connections to
// lb1, which hands them back).
func (sb *sandbox) testInstallRemovesAndAddsVIP(t *testing.T) {
	ctx := t.Context()
	unit, err := os.ReadFile(filepath.Join("..", "..", "packaging", "systemd", testbed.AgentUnitName))
	if err != nil {
		t.Fatal(err)
	}
	n := sb.s.Node("lb1")
	cfg := strings.Replace(testbed.NodeConfig(n.Hostname, 20*time.Second), "drain_time: 1s", "drain_time: 60s", 1)
	if err := sb.s.Provision(ctx, "lb1", testbed.NodeSetup{LBCTL: sb.lbctl, TrustedKeys: []string{sb.pubkey}, Config: cfg, AgentUnit: string(unit)}); err != nil {
		t.Fatal(err)
	}
	tree := copyTree(t, filepath.Join(sb.work, "campus-without-typo3"))
	if err := os.RemoveAll(filepath.Join(tree, "web", "typo3")); err != nil {
		t.Fatal(err)
	}
	without := sb.bundle(t, tree, 101)
	full := sb.bundle(t, filepath.Join("..", "..", "examples", "campus"), 102)
	install := func(b []byte, serial int) chan error {
		done := make(chan error, 1)
		go func() {
			start := time.Now()
			out, err := sb.s.Install(ctx, "lb1", b)
			if err == nil && !strings.Contains(string(out), fmt.Sprintf("installed release %d", serial)) {
				err = fmt.Errorf("install %d: %s", serial, out)
			}
			t.Logf("lb1: install of release %d took %v", serial, time.Since(start).Round(time.Millisecond))
			done <- err
		}()
		return done
	}
	var removed chan error
	sb.keepAliveRun(t, typo3VIP, true, func(start time.Time) {
		t.Logf("lb1: installing release 101 (without %s) at %.1fs", typo3VIP, time.Since(start).Seconds())
		removed = install(without, 101)
	}, nil)
	// The run's connections are closed: the install's drain ends.
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	var added chan error
	sb.keepAliveRun(t, typo3VIP, false, func(start time.Time) {
		t.Logf("lb1: installing release 102 (with %s again) at %.1fs", typo3VIP, time.Since(start).Seconds())
		added = install(full, 102)
	}, nil)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
}

// keepAliveRun opens 40 keep-alive connections to www's address vip,
// calls at8 after 8 s, opens 20 more at 9 s, calls at14 (if not nil) after
// 14 s, and checks at 22 s that all 60 still work. bothNodes: the first
// answers must come through both lb1 and lb2.
func (sb *sandbox) keepAliveRun(t *testing.T, vip netip.Addr, bothNodes bool, at8, at14 func(start time.Time)) {
	ctx := t.Context()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var conns []*keepAlive
	open := func(n int) {
		for range n {
			k := &keepAlive{id: len(conns), vip: vip, start: time.Now()}
			conns = append(conns, k)
			wg.Add(1)
			go func() { defer wg.Done(); sb.keepAlive(ctx, k, stop) }()
			time.Sleep(25 * time.Millisecond)
		}
	}
	start := time.Now()
	open(40)
	time.Sleep(time.Until(start.Add(8 * time.Second)))
	at8(start)
	time.Sleep(time.Second)
	open(20)
	time.Sleep(time.Until(start.Add(14 * time.Second)))
	if at14 != nil {
		at14(start)
	}
	time.Sleep(time.Until(start.Add(22 * time.Second)))
	close(stop)
	wg.Wait()
	broken, via := 0, map[string]int{}
	for _, k := range conns {
		via[k.via]++
		if k.err != nil {
			broken++
			t.Errorf("connection %d (first answered through %s) broke after %d answers: %v", k.id, k.via, k.n, k.err)
		}
	}
	t.Logf("%d of %d connections broken; first answers by node %v", broken, len(conns), via)
	if bothNodes && (via["lb1"] == 0 || via["lb2"] == 0) {
		t.Errorf("connections by node %v: the router should spread them over both nodes", via)
	}
	for _, n := range sb.s.Nodes {
		out, _ := sb.s.Lbctl(ctx, n.Name, "status")
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "handoff") || strings.Contains(l, "forwarded") {
				t.Logf("%s: %s", n.Name, strings.TrimSpace(l))
			}
		}
	}
}

// testTransparentHandoff: 60 new connections to the transparent ERP VIP,
// spread over both nodes by the router, while every backend's gateway is
// lb1: all answered, and the backend sees the client's own address.
func (sb *sandbox) testTransparentHandoff(t *testing.T) {
	ctx := t.Context()
	answered, bad := 0, []string{}
	for i := range 60 {
		c, err := sb.s.Dial(ctx, "tcp", netip.AddrPortFrom(erpVIP, 3200).String())
		if err != nil {
			bad = append(bad, fmt.Sprintf("%d: dial: %v", i, err))
			continue
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			bad = append(bad, fmt.Sprintf("%d: %v", i, err))
			continue
		}
		ans := testbed.ParseAnswer(line)
		src, _, _ := net.SplitHostPort(ans["src"])
		if src == "" {
			src = ans["src"]
		}
		if src != testbed.Client4.String() {
			bad = append(bad, fmt.Sprintf("%d: backend saw %q, want the client %s", i, line, testbed.Client4))
			continue
		}
		answered++
	}
	t.Logf("%d of 60 answered", answered)
	if answered != 60 {
		t.Errorf("%d of 60 connections to %s:3200 answered: %v", answered, erpVIP, bad)
	}
}

// checkHandoffActive checks that every node's status shows flow handoff
// active right after the install: the installer tells the agent when it
// commits (POST /committed), so the datapath has the release at once.
func (sb *sandbox) checkHandoffActive(t *testing.T) {
	t.Helper()
	for _, n := range sb.s.Nodes {
		out, err := sb.s.Lbctl(t.Context(), n.Name, "status")
		if err != nil || !strings.Contains(string(out), "flow handoff: active") {
			t.Fatalf("%s: flow handoff not active right after the install (%v):\n%s", n.Name, err, out)
		}
	}
}

// testAgentKilledWhileForwarding: keep-alive connections as in the drain
// test; lb2 drains the VIP at 8 s, so its connections now reach lb1, which
// hands them to lb2; at 9 s lb1's agent is killed (SIGKILL: it withdraws
// nothing) and systemd restarts it a second later. The programs are pinned,
// so lb1 goes on handing off while no agent runs, and the new agent adopts
// them: all 60 connections keep working.
func (sb *sandbox) testAgentKilledWhileForwarding(t *testing.T) {
	ctx := t.Context()
	vip := typo3VIP.String()
	pid := func() string {
		out, _ := sb.s.NodeRun(ctx, "lb1", nil, "systemctl", "show", "-P", "MainPID", testbed.AgentUnitName)
		return strings.TrimSpace(string(out))
	}
	before := pid()
	sb.keepAliveRun(t, typo3VIP, true, func(start time.Time) {
		if out, err := sb.s.Lbctl(ctx, "lb2", "drain", "--wait", "0", vip); err != nil {
			t.Fatalf("drain: %v\n%s", err, out)
		}
		time.Sleep(time.Second)
		if out, err := sb.s.NodeRun(ctx, "lb1", nil, "systemctl", "kill", "-s", "KILL", testbed.AgentUnitName); err != nil {
			t.Fatalf("kill lb1's agent: %v\n%s", err, out)
		}
		t.Logf("lb2 drained %s, lb1's agent (PID %s) killed at %.1fs", vip, before, time.Since(start).Seconds())
	}, func(start time.Time) {
		if out, err := sb.s.Lbctl(ctx, "lb2", "undrain", vip); err != nil {
			t.Fatalf("undrain: %v\n%s", err, out)
		}
	})
	if after := pid(); after == before || after == "0" {
		t.Errorf("lb1's agent main PID %s after the kill, was %s: systemd did not restart it", after, before)
	}
	out, err := sb.s.Lbctl(ctx, "lb1", "status")
	if err != nil || !strings.Contains(string(out), "flow handoff: active") || !strings.Contains(string(out), "pinned in /sys/fs/bpf/lbctl/handoff") {
		t.Errorf("lb1 after the restart (%v): want flow handoff active and pinned:\n%s", err, out)
	}
}
