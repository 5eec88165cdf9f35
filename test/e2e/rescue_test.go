package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/test/testbed"
)

// Addresses of examples/campus used by the rescue CLI tests.
var intranetVIP = netip.MustParseAddr("192.0.2.12")

// lbctlOn runs lbctl with args on a node and returns its combined output
// and whether it exited 0 (a failure to start it at all fails t).
func (sb *sandbox) lbctlOn(t *testing.T, node string, args ...string) (string, bool) {
	t.Helper()
	cmd, err := sb.s.NodeCommand(t.Context(), node, append([]string{testbed.NodeLBCTL}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("lbctl %s on %s: %v", strings.Join(args, " "), node, err)
	}
	return string(out), err == nil
}

// nodeOfSource names the LB node whose backend-side address a backend saw.
func (sb *sandbox) nodeOfSource(t *testing.T, src string) string {
	t.Helper()
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		t.Fatalf("backend source %q: %v", src, err)
	}
	for _, n := range sb.s.Nodes {
		if a := ap.Addr().Unmap(); a == n.Backend4 || a == n.Backend6 {
			return n.Name
		}
	}
	t.Fatalf("backend source %s is no LB node's", src)
	return ""
}

// testLogs requests a unique path through the wiki VIP, then reads
// `lbctl logs` on the node that served it: HAProxy's request line with
// that path is in the wiki VIP's journal, not in another VIP's and not on
// the other node's; -n bounds the lines; an unknown VIP is refused by
// name.
func (sb *sandbox) testLogs(t *testing.T) {
	token := fmt.Sprintf("/lbctl-logs-%016x", mrand.Uint64())
	resp, ans := get(t, sb.client(t, "wiki.campus.example", wikiVIP), "https://wiki.campus.example"+token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", token, resp.Status)
	}
	served := sb.nodeOfSource(t, ans["src"])
	other := "lb1"
	if served == "lb1" {
		other = "lb2"
	}
	// The agent's health checks keep every VIP's journal busy (several
	// lines a second): -n must cut it, and still hold the request.
	const lines = 20
	logs := func(node, vip string) string {
		t.Helper()
		out, ok := sb.lbctlOn(t, node, "logs", vip, "-n", fmt.Sprint(lines))
		if !ok {
			t.Fatalf("lbctl logs %s on %s failed:\n%s", vip, node, out)
		}
		return out
	}
	// HAProxy logs a request when it ends, and journald is asynchronous:
	// wait a little for the line.
	var out string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if out = logs(served, wikiVIP.String()); strings.Contains(out, "GET "+token) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, "GET "+token) {
		t.Fatalf("lbctl logs %s on %s (which served GET %s) lacks the request:\n%s", wikiVIP, served, token, out)
	}
	t.Logf("%s: lbctl logs %s -n %d:\n%s", served, wikiVIP, lines, out)
	if n := strings.Count(strings.TrimRight(out, "\n"), "\n") + 1; n != lines {
		t.Errorf("lbctl logs -n %d printed %d lines", lines, n)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, " haproxy[") && !strings.Contains(l, " systemd[1]: ") {
			t.Errorf("lbctl logs %s: line from neither HAProxy nor systemd: %q", wikiVIP, l)
		}
	}
	if o := logs(served, typo3VIP.String()); strings.Contains(o, token) {
		t.Errorf("lbctl logs %s on %s shows the wiki VIP's request %s:\n%s", typo3VIP, served, token, o)
	}
	if o := logs(other, wikiVIP.String()); strings.Contains(o, token) {
		t.Errorf("lbctl logs %s on %s shows a request %s served by %s:\n%s", wikiVIP, other, token, served, o)
	}

	const unknown = "192.0.2.99"
	if out, ok := sb.lbctlOn(t, served, "logs", unknown); ok || !strings.Contains(out, unknown) || !strings.Contains(out, "no VIP") {
		t.Errorf("lbctl logs %s (no such VIP): exit 0=%v, want an error naming it:\n%s", unknown, ok, out)
	}
}

// testVIPRestart restarts the intranet VIP's HAProxy on lb1 with `lbctl
// vip restart`: its main PID changes, every other VIP's on both nodes
// stays, lb1's route to it is back at the router, and lb1 serves it. An
// unknown VIP is refused and restarts nothing.
func (sb *sandbox) testVIPRestart(t *testing.T) {
	const node = "lb1"
	vip := intranetVIP.String()
	key := node + " " + vip
	// The earlier subtests may have just restarted something: start from
	// a settled site.
	if err := sb.s.WaitECMP(t.Context(), sb.prefixes, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	before := sb.pids(t)
	if before[key] == 0 {
		t.Fatalf("no HAProxy main PID for %s: %v", key, before)
	}

	const unknown = "192.0.2.99"
	if out, ok := sb.lbctlOn(t, node, "vip", "restart", unknown); ok || !strings.Contains(out, unknown) || !strings.Contains(out, "no VIP") {
		t.Errorf("lbctl vip restart %s (no such VIP): exit 0=%v, want an error naming it:\n%s", unknown, ok, out)
	}
	if after := sb.pids(t); !mapsEqual(before, after) {
		t.Errorf("lbctl vip restart %s changed HAProxy main PIDs:\nbefore %v\nafter  %v", unknown, before, after)
	}

	start := time.Now()
	out, ok := sb.lbctlOn(t, node, "vip", "restart", vip)
	if !ok || !strings.Contains(out, "active") {
		t.Fatalf("lbctl vip restart %s on %s: exit 0=%v\n%s", vip, node, ok, out)
	}
	t.Logf("%s: lbctl vip restart %s in %v: %s", node, vip, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	after := sb.pids(t)
	if after[key] == 0 || after[key] == before[key] {
		t.Errorf("%s: HAProxy main PID %d before the restart, %d after: want a new process", key, before[key], after[key])
	}
	for k, pid := range before {
		if k != key && after[k] != pid {
			t.Errorf("%s: HAProxy main PID %d changed to %d by restarting %s", k, pid, after[k], key)
		}
	}
	// lb1's next hop is back in the router's route to the VIP.
	var routes []netip.Prefix
	for _, v := range sb.m.VIPs {
		if v.Name == vip {
			for _, a := range v.Addresses {
				addr := a
				routes = append(routes, netip.PrefixFrom(addr, addr.BitLen()))
			}
		}
	}
	if len(routes) == 0 {
		t.Fatalf("no VIP %s in the model", vip)
	}
	if err := sb.s.WaitECMP(t.Context(), routes, 10*time.Second); err != nil {
		t.Fatalf("after lbctl vip restart %s on %s: %v", vip, node, err)
	}
	t.Logf("router routes %v through both nodes again %v after the restart", routes, time.Since(start).Round(time.Millisecond))
	res, err := testbed.Traffic{URL: "https://intranet.campus.example/", Hosts: map[string]netip.Addr{"intranet.campus.example": intranetVIP},
		Count: 20, Interval: 5 * time.Millisecond}.Run(t.Context(), sb.s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.ByNode[node] == 0 {
		t.Errorf("after the restart: %d of %d requests failed %v, by node %v: want all served, some by %s", res.Failed, res.Requests, res.Errors, res.ByNode, node)
	}
	if st := sb.status(t, node); st.Serial != 100 {
		t.Errorf("%s: release %d after a VIP restart, want 100", node, st.Serial)
	}
}

// testDoctor runs `lbctl doctor` on both nodes (clean, every check
// named), then breaks one thing at a time on lb1, an expired certificate
// and a stopped BIRD: doctor fails naming just that, and is clean again
// once it is repaired.
func (sb *sandbox) testDoctor(t *testing.T) {
	wantChecks := []string{"nftables", "eBPF socket probes", "sock_diag", "BIRD control socket", "HAProxy", "systemd D-Bus", "certificate wiki.campus.example"}
	clean := func(node string) {
		t.Helper()
		out, ok := sb.lbctlOn(t, node, "doctor")
		if !ok {
			t.Fatalf("lbctl doctor on a healthy %s failed:\n%s", node, out)
		}
		for _, c := range wantChecks {
			if !strings.Contains(out, "ok   "+c) {
				t.Errorf("lbctl doctor on %s: no passed check %q:\n%s", node, c, out)
			}
		}
		if strings.Contains(out, "FAIL") {
			t.Errorf("lbctl doctor on %s exited 0 but reports a failure:\n%s", node, out)
		}
	}
	for _, n := range sb.s.Nodes {
		clean(n.Name)
	}

	const node, cert = "lb1", "wiki.campus.example"
	path := filepath.Join(sb.s.Node(node).CertDir, cert+".pem")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := os.WriteFile(path, orig, fi.Mode().Perm()); err != nil {
			t.Errorf("restore %s: %v", path, err)
		}
	}
	t.Cleanup(restore)
	if err := os.WriteFile(path, expiredCert(t, cert), fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	out, ok := sb.lbctlOn(t, node, "doctor")
	if ok {
		t.Errorf("lbctl doctor with an expired certificate exited 0:\n%s", out)
	}
	if !strings.Contains(out, "FAIL certificate "+cert+" expired on") || !strings.Contains(out, "doctor: 1 problem") {
		t.Errorf("lbctl doctor with an expired %s: want exactly that failure named:\n%s", cert, out)
	}
	t.Logf("%s: lbctl doctor with an expired certificate:\n%s", node, out)
	// --json says the same, and so does its exit status.
	out, ok = sb.lbctlOn(t, node, "doctor", "--json")
	var checks []struct {
		What string `json:"what"`
		OK   bool   `json:"ok"`
	}
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatalf("lbctl doctor --json: %v\n%s", err, out)
	}
	var failed []string
	for _, c := range checks {
		if !c.OK {
			failed = append(failed, c.What)
		}
	}
	if ok || strings.Join(failed, ",") != "certificate "+cert {
		t.Errorf("lbctl doctor --json with an expired %s: exit 0=%v, failed checks %q", cert, ok, failed)
	}
	restore()
	clean(node)

	// BIRD stopped: its control socket is gone.
	stopped := false
	startBird := func() {
		if stopped {
			if _, err := sb.s.NodeRun(t.Context(), node, nil, "systemctl", "start", "bird.service"); err != nil {
				t.Error(err)
			}
			stopped = false
		}
	}
	t.Cleanup(startBird)
	if _, err := sb.s.NodeRun(t.Context(), node, nil, "systemctl", "stop", "bird.service"); err != nil {
		t.Fatal(err)
	}
	stopped = true
	out, ok = sb.lbctlOn(t, node, "doctor")
	if ok || !strings.Contains(out, "FAIL BIRD control socket") || !strings.Contains(out, "doctor: 1 problem") {
		t.Errorf("lbctl doctor with BIRD stopped: exit 0=%v, want exactly the BIRD check failed:\n%s", ok, out)
	}
	t.Logf("%s: lbctl doctor with BIRD stopped:\n%s", node, out)
	start := time.Now()
	startBird()
	if err := sb.s.WaitECMP(t.Context(), sb.prefixes, 20*time.Second); err != nil {
		t.Fatalf("after starting BIRD again on %s: %v", node, err)
	}
	t.Logf("%s: BIRD started again, every route back at the router after %v", node, time.Since(start).Round(time.Millisecond))
	clean(node)
}

// expiredCert is a self-signed certificate for name that expired an hour
// ago, with its key, as HAProxy's PEM files hold them.
func expiredCert(t *testing.T, name string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})...)
}
