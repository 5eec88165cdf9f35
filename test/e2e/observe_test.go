package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lbctl/lbctl/test/testbed"
)

const metricsURL = "http://127.0.0.1:9842/metrics"

// scrapeNode reads the agent's /metrics inside a node.
func (sb *sandbox) scrapeNode(t *testing.T, node string) map[string]*dto.MetricFamily {
	t.Helper()
	out, err := sb.s.NodeRun(t.Context(), node, nil, "curl", "-sSf", "--max-time", "10", metricsURL)
	if err != nil {
		t.Fatalf("%s: curl %s: %v\n%s", node, metricsURL, err, out)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("%s: parse /metrics: %v", node, err)
	}
	return mfs
}

// sum adds the values of the series of name whose labels include want.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var total float64
next:
	for _, m := range mfs[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if strings.HasSuffix(v, "*") {
				if !strings.HasPrefix(labels[k], strings.TrimSuffix(v, "*")) {
					continue next
				}
			} else if labels[k] != v {
				continue next
			}
		}
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return total
}

// sumNodes sums a metric over both LB nodes.
func (sb *sandbox) sumNodes(t *testing.T, name string, want map[string]string) float64 {
	var total float64
	for _, n := range sb.s.Nodes {
		total += sum(sb.scrapeNode(t, n.Name), name, want)
	}
	return total
}

// typo3 sends n requests to www.campus.example through both nodes.
func (sb *sandbox) typo3(t *testing.T, n int) *testbed.TrafficResult {
	t.Helper()
	res, err := testbed.Traffic{URL: "https://www.campus.example/", Hosts: map[string]netip.Addr{"www.campus.example": typo3VIP},
		Count: n, Interval: 5 * time.Millisecond}.Run(t.Context(), sb.s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 {
		t.Fatalf("%d of %d requests failed: %v", res.Failed, res.Requests, res.Errors)
	}
	return res
}

const web2 = "typo3-web2.campus.example"

// onWeb2 counts the requests typo3-web2 served.
func onWeb2(res *testbed.TrafficResult) int { return res.ByBackend[web2] }

// lbctlAll runs lbctl on both nodes and fails t on an error.
func (sb *sandbox) lbctlAll(t *testing.T, args ...string) {
	t.Helper()
	sb.eachNode(t, func(node string) error {
		out, err := sb.s.Lbctl(t.Context(), node, args...)
		if err != nil {
			return fmt.Errorf("%s: lbctl %s: %w\n%s", node, strings.Join(args, " "), err, out)
		}
		t.Logf("%s: lbctl %s: %s", node, strings.Join(args, " "), strings.TrimSpace(string(out)))
		return nil
	})
}

// stateEvents reads, per node, how many server state changes the typo3
// VIP's HAProxy reported on the agent's events socket.
func (sb *sandbox) stateEvents(t *testing.T) map[string]float64 {
	t.Helper()
	n := map[string]float64{}
	for _, node := range sb.s.Nodes {
		n[node.Name] = sum(sb.scrapeNode(t, node.Name), "lbctl_haproxy_state_events_total", map[string]string{"vip": typo3VIP.String()})
	}
	return n
}

// waitStateEvents: the drain reached each node's agent as HAProxy's own
// state event ("enters drain state"), through the hardened
// lb-haproxy@.service (user haproxy, read-only file system) to the agent's
// events socket; without it the agent reads the VIP's servers only every
// probe_interval.
func (sb *sandbox) waitStateEvents(t *testing.T, before map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		now, missing := sb.stateEvents(t), []string{}
		for node, b := range before {
			if now[node] <= b {
				missing = append(missing, node)
			}
		}
		if len(missing) == 0 {
			t.Logf("state events of %s: %v before the drain, %v after", typo3VIP, before, now)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HAProxy state event of %s reached the agent on %v after lbctl server drain (before %v, now %v)", typo3VIP, missing, before, now)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitServerState polls until every backend of the typo3 VIP shows the
// server in state on both nodes (the agent re-applies an operator's state
// after a reload, restart or install).
func (sb *sandbox) waitServerState(t *testing.T, server, state string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		all, in := 0.0, 0.0
		for _, n := range sb.s.Nodes {
			mfs := sb.scrapeNode(t, n.Name)
			sel := map[string]string{"vip": typo3VIP.String(), "server": server + "*"}
			a := sum(mfs, "lbctl_haproxy_server_state", sel)
			sel["state"] = state
			s := sum(mfs, "lbctl_haproxy_server_state", sel)
			if a == 0 || s != a {
				all = -1
				break
			}
			all, in = all+a, in+s
		}
		if all > 0 && in == all {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s not %s in every backend of %s on both nodes after 30s", server, state, typo3VIP)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitSettled waits until the typo3 VIP's HAProxy finished its first
// checks after a reload or install (no server in check INI) and both nodes
// announce the VIP again: until then the agent may withdraw it (a reload
// starts every checked server in INI, which the health gate does not count
// as up), and requests would fail with "network unreachable".
func (sb *sandbox) waitSettled(t *testing.T) {
	t.Helper()
	start := time.Now()
	for {
		settled := true
		for _, n := range sb.s.Nodes {
			mfs := sb.scrapeNode(t, n.Name)
			if sum(mfs, "lbctl_haproxy_server_check_status", map[string]string{"vip": typo3VIP.String(), "check": "INI"}) != 0 ||
				sum(mfs, "lbctl_vip_announced", map[string]string{"vip": typo3VIP.String()}) != 1 {
				settled = false
			}
		}
		if settled {
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("the typo3 VIP did not settle (checks done, announced by both nodes) within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := sb.s.WaitECMP(t.Context(), sb.prefixes, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("typo3 VIP settled %v later", time.Since(start).Round(time.Millisecond))
}

// smtpOn opens SMTP connections to the mail VIP until one is served by
// the wanted backend; the others are closed.
func (sb *sandbox) smtpOn(t *testing.T, backend string) (net.Conn, *bufio.Reader) {
	t.Helper()
	for range 40 {
		c, err := sb.s.Dial(t.Context(), "tcp", netip.AddrPortFrom(smtpVIP, 25).String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		banner, err := r.ReadString('\n')
		if err == nil && strings.Contains(banner, "backend="+backend+" ") {
			return c, r
		}
		c.Close()
	}
	t.Fatalf("no SMTP connection reached %s in 40 tries", backend)
	return nil, nil
}

// testObserve: traffic counters count exactly what was sent; lbctl server
// drain stops new requests to a server on both nodes while an open
// session to it finishes; the drain survives a reload and an install;
// enable brings the server back; the status page lists every VIP in a
// real headless browser.
func (sb *sandbox) testObserve(t *testing.T) {
	svc := map[string]string{"vip": typo3VIP.String(), "service": "web/typo3/www"}
	before := sb.sumNodes(t, "lbctl_haproxy_backend_http_responses_total", svc)
	const n = 40
	res := sb.typo3(t, n)
	// The agent caches a read for a second; poll until the count settles.
	var got float64
	deadline := time.Now().Add(15 * time.Second)
	for {
		got = sb.sumNodes(t, "lbctl_haproxy_backend_http_responses_total", svc) - before
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got != n {
		t.Errorf("web/typo3/www responses rose by %v over both nodes, want exactly %d (by node %v)", got, n, res.ByNode)
	} else {
		t.Logf("%d requests through the typo3 VIP (by node %v): its www service's response counter rose by exactly %v", n, res.ByNode, got)
	}

	if onWeb2(res) == 0 {
		t.Fatalf("typo3-web2 served none of %d requests before the drain (by backend %v)", n, res.ByBackend)
	}

	// An SMTP session held open on mx2 across its drain.
	conn, rd := sb.smtpOn(t, "mx2")
	defer conn.Close()
	// The session keeps talking (NOOP every 2 s) while both nodes drain.
	noop := func() error {
		fmt.Fprint(conn, "NOOP\r\n")
		if l, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(l, "250") {
			return fmt.Errorf("NOOP: %q %v", l, err)
		}
		return nil
	}
	stopTalk, talked := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopTalk:
				talked <- nil
				return
			case <-tick.C:
				if err := noop(); err != nil {
					talked <- err
					return
				}
			}
		}
	}()
	eventsBefore := sb.stateEvents(t)
	start := time.Now()
	sb.lbctlAll(t, "server", "drain", "typo3-web2")
	sb.lbctlAll(t, "server", "drain", "mx2")
	returned := time.Now()
	var stopped time.Duration
	for {
		r := sb.typo3(t, 20)
		if onWeb2(r) == 0 && r.ByNode["lb1"] > 0 && r.ByNode["lb2"] > 0 {
			stopped = time.Since(start)
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("typo3-web2 still served %d of 20 new requests 20s after the drain (by node %v)", onWeb2(r), r.ByNode)
		}
	}
	t.Logf("no new request reached typo3-web2 through either node %v after lbctl server drain started, %v after the commands returned",
		stopped.Round(time.Millisecond), (stopped - returned.Sub(start)).Round(time.Millisecond))
	sb.waitStateEvents(t, eventsBefore)
	close(stopTalk)
	if err := <-talked; err != nil {
		t.Errorf("the SMTP session open on mx2 broke during the drain: %v", err)
	} else if err := noop(); err != nil {
		t.Errorf("the SMTP session open on mx2 broke after the drain: %v", err)
	}
	fmt.Fprint(conn, "QUIT\r\n")
	if l, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(l, "221") {
		t.Errorf("the SMTP session open on mx2 did not finish: %q %v", l, err)
	}
	for range 10 {
		c, err := sb.s.Dial(t.Context(), "tcp", netip.AddrPortFrom(smtpVIP, 25).String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		banner, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.Contains(banner, "backend=mx2 ") {
			t.Errorf("a new SMTP session reached drained mx2: %q", banner)
		}
	}
	out, _ := sb.s.Lbctl(t.Context(), "lb1", "status")
	if !strings.Contains(string(out), "server typo3-web2: drain in every VIP") {
		t.Errorf("lbctl status does not show the drained server:\n%s", out)
	}

	t.Run("StatusPage", sb.testStatusPage)

	// A reload starts a new HAProxy worker with every server ready; the
	// agent sets the drain again.
	unit := "lb-haproxy@" + typo3VIP.String() + ".service"
	sb.eachNode(t, func(node string) error {
		out, err := sb.s.NodeRun(t.Context(), node, nil, "systemctl", "reload", unit)
		if err != nil {
			return fmt.Errorf("%s: systemctl reload %s: %w\n%s", node, unit, err, out)
		}
		return nil
	})
	t.Logf("after reload: typo3-web2 drained again on both nodes %v after the reload returned", sb.waitServerState(t, "typo3-web2", "DRAIN").Round(time.Millisecond))
	sb.waitSettled(t)
	if r := sb.typo3(t, 30); onWeb2(r) != 0 {
		t.Errorf("after a reload typo3-web2 served %d of 30 new requests", onWeb2(r))
	}

	// An install that changes the typo3 VIP's configuration.
	tree := copyTree(t, filepath.Join(t.TempDir(), "campus"))
	appendFile(t, filepath.Join(tree, "web", "typo3", "www.yaml"), "  - {from: /observe, to: \"https://www.campus.example/\", code: 301}\n")
	for node, r := range sb.installAll(t, sb.bundle(t, tree, 300)) {
		if r.err != nil || !strings.Contains(r.out, "installed release 300") {
			t.Fatalf("install on %s: %v\n%s", node, r.err, r.out)
		}
	}
	t.Logf("after install: typo3-web2 drained on both nodes %v after the installs returned", sb.waitServerState(t, "typo3-web2", "DRAIN").Round(time.Millisecond))
	sb.waitSettled(t)
	if r := sb.typo3(t, 30); onWeb2(r) != 0 {
		t.Errorf("after an install typo3-web2 served %d of 30 new requests", onWeb2(r))
	}

	sb.lbctlAll(t, "server", "enable", "typo3-web2")
	sb.lbctlAll(t, "server", "enable", "mx2")
	start = time.Now()
	for {
		if r := sb.typo3(t, 30); onWeb2(r) > 0 {
			t.Logf("typo3-web2 serves again %v after enable (%d of 30)", time.Since(start).Round(time.Millisecond), onWeb2(r))
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("typo3-web2 got no request 20s after lbctl server enable")
		}
	}
}

// testStatusPage loads each node's status page in Debian's chromium,
// headless, inside the node, and checks it lists every VIP of the campus
// and the drained server; it leaves a screenshot for review.
func (sb *sandbox) testStatusPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("needs chromium (Debian package chromium; ./scripts/deps.sh chromium): status page not tested in a browser")
	}
	for _, n := range sb.s.Nodes {
		dir := "/var/tmp/lbctl-chromium-" + n.Name
		args := []string{chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
			"--user-data-dir=" + dir + "/profile", "--window-size=1600,2400", "--virtual-time-budget=3000"}
		// Generous bounds: chromium starts slowly on a loaded machine.
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		dom, err := sb.s.NodeRun(ctx, n.Name, nil, append(args, "--dump-dom", "http://127.0.0.1:9842/")...)
		cancel()
		if err != nil {
			t.Fatalf("%s: chromium --dump-dom: %v\n%s", n.Name, err, dom)
		}
		ctx, cancel = context.WithTimeout(t.Context(), 4*time.Minute)
		shot, err := sb.s.NodeRun(ctx, n.Name, nil, append(args, "--screenshot="+dir+"/page.png", "http://127.0.0.1:9842/")...)
		cancel()
		if err != nil {
			t.Fatalf("%s: chromium --screenshot: %v\n%s", n.Name, err, shot)
		}
		page := string(dom)
		for _, v := range sb.m.VIPs {
			if !strings.Contains(page, `data-vip="`+v.Name+`"`) {
				t.Errorf("%s: the status page does not list VIP %s", n.Name, v.Name)
			}
		}
		if !strings.Contains(page, "typo3-web2: drain in every VIP") || !strings.Contains(page, web2+" DRAIN") {
			t.Errorf("%s: the status page does not show typo3-web2 drained", n.Name)
		}
		host, err := sb.s.NodePath(n.Name, dir+"/page.png")
		if err != nil {
			t.Fatal(err)
		}
		png, err := os.ReadFile(host)
		if err != nil {
			t.Fatalf("%s: no screenshot: %v", n.Name, err)
		}
		keep := filepath.Join(os.TempDir(), "lbctl-status-page-"+n.Name+".png")
		if err := os.WriteFile(keep, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: status page lists all %d VIPs; screenshot %s (%d bytes)", n.Name, len(sb.m.VIPs), keep, len(png))
	}
}
