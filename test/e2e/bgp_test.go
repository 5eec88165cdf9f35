package e2e_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/test/testbed"
)

// bgpNode is a campus node profile with BGP attributes: its own community
// and MED on every route, graceful restart.
func bgpNode(n string) string {
	return "hostname: lb" + n + "\nrouter_id: 198.51.100.1" + n + "\nasn: 65000\n" +
		"route_reflectors:\n  - {name: rr1, address: 198.51.100.2, asn: 65000}\nbfd: true\n" +
		"addresses: [198.51.100.1" + n + ", \"2001:db8:ffff::1" + n + "\"]\n" +
		"bgp:\n  graceful_restart: on\n  communities: [\"65000:10" + n + "\"]\n  large_communities: [\"65000:0:" + n + "\"]\n  med: 10\n"
}

// TestBGPAttributes brings the sandbox up once with a campus variant whose
// nodes add communities and MED to their routes and whose wiki VIP is
// primary on lb1, and checks what the route reflector and the router see:
// the communities (site, node, wiki: the wiki's list replaces the web
// team's, as lists do when defaults merge), large communities, MED and
// local preference of every path; the wiki VIP routed through lb1 only
// while it is healthy there, through lb2 (the backup, local preference 50)
// when lb1's HAProxy is killed, and through lb1 again once it is back; and
// lbctl drain --all with a graceful shutdown on lb2: its routes first carry
// GRACEFUL_SHUTDOWN with local preference 0 (the router stops using them
// while they are still announced), then go, and undrain brings them back
// without it.
func TestBGPAttributes(t *testing.T) {
	skipUnlessSandbox(t)
	sb := setUpTree(t, func(tree string) {
		for _, n := range []string{"1", "2"} {
			writeTreeFile(t, tree, "nodes/lb"+n+".yaml", bgpNode(n))
		}
		wiki, err := os.ReadFile(filepath.Join(tree, "web", "wiki.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		writeTreeFile(t, tree, "web/wiki.yaml", string(wiki)+"bgp:\n  primary: lb1\n  communities: [\"65000:211\"]\n")
	})
	wiki := netip.PrefixFrom(wikiVIP, 32)
	if len(sb.primaries) == 0 || sb.primaries[0].prefix != wiki {
		t.Fatalf("primary routes %v, want the wiki VIP's", sb.primaries)
	}
	lb1, lb2 := sb.s.Node("lb1").Core4, sb.s.Node("lb2").Core4

	t.Run("AttributesAtReflectorAndRouter", func(t *testing.T) {
		for _, speaker := range []string{"rr", "router"} {
			paths := sb.waitPaths(t, speaker, wiki, func(ps map[netip.Addr]testbed.BirdPath) bool { return len(ps) == 2 })
			for via, want := range map[netip.Addr][]string{
				lb1: {"BGP.community: (65000,1) (65000,101) (65000,211)", "BGP.large_community: (65000, 0, 1)", "BGP.med: 10", "BGP.local_pref: 100"},
				lb2: {"BGP.community: (65000,1) (65000,102) (65000,211)", "BGP.large_community: (65000, 0, 2)", "BGP.med: 10", "BGP.local_pref: 50"},
			} {
				for _, w := range want {
					if !strings.Contains(paths[via].Attrs, w) {
						t.Errorf("%s: wiki path via %s lacks %q:\n%s", speaker, via, w, paths[via].Attrs)
					}
				}
			}
			if !paths[lb1].Best || paths[lb2].Best {
				t.Errorf("%s: best wiki path is not lb1's (lb1 best %v, lb2 best %v)", speaker, paths[lb1].Best, paths[lb2].Best)
			}
		}
	})

	t.Run("PrimaryBackupFailover", func(t *testing.T) { sb.testPrimaryFailover(t, wiki) })
	t.Run("GracefulShutdown", func(t *testing.T) { sb.testGracefulShutdown(t, lb2) })
}

// testPrimaryFailover: the wiki VIP is served by lb1 alone; SIGKILL to
// lb1's HAProxy moves the router's route to lb2, which serves every request
// until lb1 is back, and then lb1 alone serves again.
func (sb *sandbox) testPrimaryFailover(t *testing.T, wiki netip.Prefix) {
	ctx := t.Context()
	wikiTraffic := func(tr testbed.Traffic) *testbed.TrafficResult {
		tr.URL, tr.Hosts = "https://wiki.campus.example/", map[string]netip.Addr{"wiki.campus.example": wikiVIP}
		res, err := tr.Run(ctx, sb.s)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := wikiTraffic(testbed.Traffic{Count: 30, Interval: 5 * time.Millisecond}); res.OK != 30 || res.ByNode["lb1"] != 30 {
		t.Fatalf("before the failure: %d of 30 answered, by node %v (want all by lb1) %v", res.OK, res.ByNode, res.Errors)
	}
	done := make(chan *testbed.TrafficResult, 1)
	go func() {
		done <- wikiTraffic(testbed.Traffic{Interval: 20 * time.Millisecond, Duration: 7 * time.Second, Workers: 1, RetryRefused: true})
	}()
	time.Sleep(1500 * time.Millisecond)
	f, err := sb.s.KillHAProxy(ctx, "lb1", wikiVIP.String(), 10*time.Second)
	if err != nil {
		<-done
		t.Fatal(err)
	}
	t.Logf("lb1: SIGKILL to %s: the router's route became %q after %v", f.Unit, f.After, f.Withdrawn.Round(time.Millisecond))
	if !strings.Contains(f.After, "via "+sb.s.Node("lb2").Core4.String()) {
		t.Errorf("after the kill the router routes the wiki VIP as %q, want via lb2 (the backup)", f.After)
	}
	if _, err := sb.s.WaitBack(ctx, f, 30*time.Second); err != nil {
		t.Error(err)
	}
	res := <-done
	t.Logf("during the failover: %d requests, %d failed %v, %d retried, by node %v, per second %v", res.Requests, res.Failed, res.Errors, res.Retried, res.ByNode, res.Seconds)
	// One worker: at most the one request in flight when HAProxy was
	// killed can lose its answer (EOF; no load balancer can save it),
	// every other one is answered, by lb2 while lb1 is down.
	if res.Failed > 1 || res.ByNode["lb2"] == 0 || res.OK < res.Requests-1 {
		t.Errorf("during the failover %d of %d requests failed %v, by node %v (want some by lb2)", res.Failed, res.Requests, res.Errors, res.ByNode)
	}
	if err := sb.s.WaitRouteVia(ctx, wiki, []string{"lb1"}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if res := wikiTraffic(testbed.Traffic{Count: 30, Interval: 5 * time.Millisecond}); res.OK != 30 || res.ByNode["lb1"] != 30 {
		t.Errorf("after lb1 is back: %d of 30 answered, by node %v (want all by lb1)", res.OK, res.ByNode)
	}
}

// testGracefulShutdown: lbctl drain --all --graceful-shutdown on lb2 first
// marks its routes with GRACEFUL_SHUTDOWN (local preference 0 at the
// reflector and the router, which routes the TYPO3 VIP through lb1 only
// while lb2 still announces it), then withdraws them; undrain --all brings
// them back unmarked, through both nodes.
func (sb *sandbox) testGracefulShutdown(t *testing.T, lb2 netip.Addr) {
	ctx := t.Context()
	typo3 := netip.PrefixFrom(typo3VIP, 32)
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := sb.s.Lbctl(ctx, "lb2", "drain", "--all", "--graceful-shutdown", "8s", "--wait", "0")
		done <- result{out, err}
	}()
	paths := sb.waitPaths(t, "rr", typo3, func(ps map[netip.Addr]testbed.BirdPath) bool {
		return strings.Contains(ps[lb2].Attrs, "(65535,0)")
	})
	if !strings.Contains(paths[lb2].Attrs, "BGP.local_pref: 0") {
		t.Errorf("reflector: lb2's TYPO3 path with GRACEFUL_SHUTDOWN has not local preference 0:\n%s", paths[lb2].Attrs)
	}
	if err := sb.s.WaitRouteVia(ctx, typo3, []string{"lb1"}, 5*time.Second); err != nil {
		t.Errorf("during lb2's graceful shutdown: %v", err)
	}
	if _, ps, _ := sb.s.ShowRouteAll(ctx, "rr", typo3); !slices.ContainsFunc(ps, func(p testbed.BirdPath) bool { return p.Via == lb2 }) {
		t.Errorf("lb2's TYPO3 route is gone before the graceful shutdown time passed")
	}
	r := <-done
	if r.err != nil || !strings.Contains(string(r.out), "graceful shutdown") {
		t.Fatalf("lb2: drain --all: %v\n%s", r.err, r.out)
	}
	sb.waitPaths(t, "rr", typo3, func(ps map[netip.Addr]testbed.BirdPath) bool { _, ok := ps[lb2]; return !ok })
	if out, err := sb.s.Lbctl(ctx, "lb2", "undrain", "--all"); err != nil {
		t.Fatalf("lb2: undrain --all: %v\n%s", err, out)
	}
	if err := sb.s.WaitECMP(ctx, sb.prefixes, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	paths = sb.waitPaths(t, "rr", typo3, func(ps map[netip.Addr]testbed.BirdPath) bool { _, ok := ps[lb2]; return ok })
	if strings.Contains(paths[lb2].Attrs, "(65535,0)") || !strings.Contains(paths[lb2].Attrs, "BGP.local_pref: 100") {
		t.Errorf("after undrain lb2's TYPO3 path:\n%s", paths[lb2].Attrs)
	}
}

// waitPaths polls `show route all` of prefix at speaker until ok accepts
// its paths (by next hop) and returns them; it fails t after 30 s.
func (sb *sandbox) waitPaths(t *testing.T, speaker string, p netip.Prefix, ok func(map[netip.Addr]testbed.BirdPath) bool) map[netip.Addr]testbed.BirdPath {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		out, paths, err := sb.s.ShowRouteAll(ctx, speaker, p)
		byVia := map[netip.Addr]testbed.BirdPath{}
		for _, ph := range paths {
			byVia[ph.Via] = ph
		}
		if err == nil && ok(byVia) {
			return byVia
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: route %s never as expected (%v):\n%s", speaker, p, err, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// writeTreeFile writes a file of the intents tree copy.
func writeTreeFile(t *testing.T, tree, rel, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(tree, filepath.FromSlash(rel)), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
