package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/test/testbed"
)

// testRepair runs `lbctl repair` on lb2, which testVerifyDrift left with
// an edited wiki config and a rule added by hand to the lbctl table: a dry
// run lists the steps and changes nothing; the repair removes the rule (as
// the kernel lists the table back), restores the config byte for byte,
// leaves every other VIP's HAProxy alone and lb2 serves the wiki again.
// Then a stopped unit and a deleted VIP address are repaired the same way.
func (sb *sandbox) testRepair(t *testing.T) {
	const node = "lb2"
	wikiCfg := "/etc/lbctl/vips/" + wikiVIP.String() + "/haproxy.cfg"
	released := sb.releasedFile(t, node, wikiVIP.String(), "haproxy.cfg")
	verify := func() (string, bool) {
		t.Helper()
		return sb.lbctlOn(t, node, "verify")
	}

	// The drift testVerifyDrift left.
	drifted, ok := verify()
	if ok || !strings.Contains(drifted, "vip 192.0.2.11: haproxy.cfg differs from release 100") || !strings.Contains(drifted, "nftables:") {
		t.Fatalf("lbctl verify before the repair: exit 0=%v, want exit 1 naming the edited config and the nft rule:\n%s", ok, drifted)
	}
	if n := sb.handRules(t, node); n != 1 {
		t.Fatalf("%d rules for tcp dport 2222 in table inet lbctl before the repair, want the 1 added by hand", n)
	}
	if b := sb.nodeFile(t, node, wikiCfg); bytes.Equal(b, released) {
		t.Fatalf("%s on %s is already the release's before the repair", wikiCfg, node)
	}
	// lb1, untouched, has the table lbctl programs.
	wantRules := sb.ruleCount(t, "lb1")
	before := sb.pids(t)

	// A dry run lists the steps and changes nothing.
	out, ok := sb.lbctlOn(t, node, "repair", "--dry-run")
	if !ok {
		t.Fatalf("lbctl repair --dry-run failed:\n%s", out)
	}
	for _, want := range []string{"firewall", "reload-vip 192.0.2.11", "health-gate [192.0.2.11]", "dry run: nothing changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("lbctl repair --dry-run lacks %q:\n%s", want, out)
		}
	}
	t.Logf("%s: lbctl repair --dry-run:\n%s", node, out)
	if again, ok := verify(); ok || again != drifted {
		t.Errorf("lbctl verify after a dry run: exit 0=%v\n%s\nwant the same drift:\n%s", ok, again, drifted)
	}

	// The repair.
	start := time.Now()
	out, ok = sb.lbctlOn(t, node, "repair")
	took := time.Since(start)
	if !ok || !strings.Contains(out, "matches release 100 again") {
		t.Fatalf("lbctl repair: exit 0=%v\n%s", ok, out)
	}
	t.Logf("%s: lbctl repair in %v:\n%s", node, took.Round(time.Millisecond), out)
	if out, ok := verify(); !ok || !strings.Contains(out, "matches release 100") {
		t.Errorf("lbctl verify after the repair: exit 0=%v\n%s", ok, out)
	}
	if n := sb.handRules(t, node); n != 0 {
		t.Errorf("%d rules for tcp dport 2222 in table inet lbctl after the repair, want none", n)
	}
	if n := sb.ruleCount(t, node); n != wantRules {
		t.Errorf("table inet lbctl on %s has %d rules after the repair, lb1's has %d", node, n, wantRules)
	}
	if b := sb.nodeFile(t, node, wikiCfg); !bytes.Equal(b, released) {
		t.Errorf("%s on %s after the repair (%d bytes) is not the release's (%d bytes)", wikiCfg, node, len(b), len(released))
	}
	after := sb.pids(t)
	for k, pid := range before {
		if after[k] != pid {
			t.Errorf("%s: HAProxy main PID %d changed to %d by the repair", k, pid, after[k])
		}
	}
	sb.servedBy(t, node, "wiki.campus.example", wikiVIP)

	// Another kind of drift: a stopped unit and a deleted VIP address.
	sh := func(cmd string) {
		t.Helper()
		if out, err := sb.s.NodeRun(t.Context(), node, nil, "sh", "-c", cmd); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, out)
		}
	}
	sh("systemctl stop lb-haproxy@" + intranetVIP.String() + ".service")
	sh("ip addr del " + typo3VIP.String() + "/32 dev lo")
	drifted, ok = verify()
	if ok || !strings.Contains(drifted, "unit lb-haproxy@192.0.2.12.service: ") || !strings.Contains(drifted, "addresses: vip: missing 192.0.2.10/32") {
		t.Fatalf("lbctl verify with a stopped unit and a deleted address: exit 0=%v\n%s", ok, drifted)
	}
	before = sb.pids(t)
	start = time.Now()
	out, ok = sb.lbctlOn(t, node, "repair", "--json")
	took = time.Since(start)
	var res struct {
		Drift     []string `json:"drift"`
		Steps     []string `json:"steps"`
		Repaired  bool     `json:"repaired"`
		Remaining []string `json:"remaining"`
	}
	if err := json.Unmarshal([]byte(out[max(0, strings.Index(out, "{")):]), &res); err != nil || !ok || !res.Repaired || len(res.Remaining) != 0 {
		t.Fatalf("lbctl repair --json: exit 0=%v, %v:\n%s", ok, err, out)
	}
	t.Logf("%s: lbctl repair --json in %v: drift %q, steps %q", node, took.Round(time.Millisecond), res.Drift, res.Steps)
	if strings.Join(res.Steps, "\n") != "add-addresses 192.0.2.10\nvip-files write [192.0.2.12], daemon-reload\nstart-unit 192.0.2.12\nhealth-gate [192.0.2.12]" {
		t.Errorf("repair steps %q, want the address added, the intranet unit started and gated", res.Steps)
	}
	if out, ok := verify(); !ok {
		t.Errorf("lbctl verify after the second repair failed:\n%s", out)
	}
	if out, err := sb.s.NodeRun(t.Context(), node, nil, "ip", "-o", "addr", "show", "dev", "lo"); err != nil || !strings.Contains(string(out), " "+typo3VIP.String()+"/32 ") {
		t.Errorf("%s not on lo after the repair (%v):\n%s", typo3VIP, err, out)
	}
	after = sb.pids(t)
	intranet := node + " " + intranetVIP.String()
	if after[intranet] == 0 || after[intranet] == before[intranet] {
		t.Errorf("%s: HAProxy main PID %d before, %d after the repair: want a running process", intranet, before[intranet], after[intranet])
	}
	for k, pid := range before {
		if k != intranet && after[k] != pid {
			t.Errorf("%s: HAProxy main PID %d changed to %d by the repair", k, pid, after[k])
		}
	}
	sb.servedBy(t, node, "intranet.campus.example", intranetVIP)
	sb.servedBy(t, node, "www.campus.example", typo3VIP)
}

// releasedFile is a VIP's file as the node's current release has it.
func (sb *sandbox) releasedFile(t *testing.T, node, vip, path string) []byte {
	t.Helper()
	var st plan.State
	if err := json.Unmarshal(sb.nodeFile(t, node, "/var/lib/lbctl/current/state.json"), &st); err != nil {
		t.Fatal(err)
	}
	v := st.VIP(vip)
	if v == nil {
		t.Fatalf("no VIP %s in %s's release %d", vip, node, st.Serial)
	}
	for _, f := range v.Files {
		if f.Path == path {
			return f.Data
		}
	}
	t.Fatalf("no file %s of VIP %s in %s's release %d", path, vip, node, st.Serial)
	return nil
}

func (sb *sandbox) nodeFile(t *testing.T, node, path string) []byte {
	t.Helper()
	p, err := sb.s.NodePath(node, path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nftRules lists the rules of table inet lbctl on a node as the kernel
// lists them back (nft -j), each rule's expressions as compact JSON.
func (sb *sandbox) nftRules(t *testing.T, node string) []string {
	t.Helper()
	out, err := sb.s.NodeRun(t.Context(), node, nil, "nft", "-j", "list", "table", "inet", "lbctl")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Expr json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j list table inet lbctl on %s: %v\n%s", node, err, out)
	}
	var rules []string
	for _, o := range doc.Nftables {
		if o.Rule != nil {
			var b bytes.Buffer
			if err := json.Compact(&b, o.Rule.Expr); err != nil {
				t.Fatal(err)
			}
			rules = append(rules, b.String())
		}
	}
	return rules
}

func (sb *sandbox) ruleCount(t *testing.T, node string) int { return len(sb.nftRules(t, node)) }

// handRules counts the rules matching tcp dport 2222, the one
// testVerifyDrift adds by hand.
func (sb *sandbox) handRules(t *testing.T, node string) int {
	t.Helper()
	n := 0
	for _, r := range sb.nftRules(t, node) {
		if strings.Contains(r, `"field":"dport"`) && strings.Contains(r, `"right":2222`) {
			n++
		}
	}
	return n
}

// servedBy waits until the router routes the VIP through both nodes, then
// checks that requests to host are all served, some by node.
func (sb *sandbox) servedBy(t *testing.T, node, host string, vip netip.Addr) {
	t.Helper()
	if err := sb.s.WaitECMP(t.Context(), []netip.Prefix{netip.PrefixFrom(vip, vip.BitLen())}, 10*time.Second); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	res, err := testbed.Traffic{URL: "https://" + host + "/", Hosts: map[string]netip.Addr{host: vip},
		Count: 20, Interval: 5 * time.Millisecond}.Run(t.Context(), sb.s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.ByNode[node] == 0 {
		t.Errorf("https://%s after the repair: %d of %d requests failed %v, by node %v: want all served, some by %s",
			host, res.Failed, res.Requests, res.Errors, res.ByNode, node)
	}
}
