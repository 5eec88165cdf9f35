//go:build linux

package bird_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/backendfw"
	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
	"github.com/lbctl/lbctl/test/netnstest"
)

var routeLine = regexp.MustCompile(`(?m)^([0-9a-f.:]+/[0-9]+)\s`)

// TestLiveSession runs the rendered bird.conf of lb1 and the rendered route
// reflector stanza in two namespaces joined by a veth pair: the IPv4 session
// comes up with BFD, the reflector learns exactly the VIP routes over both
// channels (the IPv6 ones with the node's IPv6 next hop), and a route in the
// include file that is not a VIP is refused by the reflector's filter.
func TestLiveSession(t *testing.T) {
	netnstest.RequireRoot(t)
	birdBin := rendertest.NeedTool(t, "bird")
	birdc := rendertest.NeedTool(t, "birdc")
	site := rendertest.Site()
	lb := *site.Node("lb1")
	lb.RouteReflectors = lb.RouteReflectors[:1] // rr1, over IPv4
	site.Nodes = []model.Node{lb}

	lbNS := netnstest.New(t, "rbird")
	rrNS := netnstest.New(t, "rbird")
	link := netnstest.Veth(t, lbNS, "198.51.100.11/24,2001:db8:ffff::11/64", rrNS, "198.51.100.2/24,2001:db8:ffff::2/64")

	dir := t.TempDir()
	// Announce every VIP plus a prefix that is not one.
	extra := netip.MustParsePrefix("198.18.0.0/24")
	v4, v6 := bird.Announce(append(bird.Prefixes(site), extra))
	opts := bird.Options{IncludeDir: filepath.Join(dir, "lb"), HoldTime: 3, KeepaliveTime: 1}.FastTimers()
	lbConf, err := bird.Config(site, &lb, opts)
	if err != nil {
		t.Fatal(err)
	}
	rrFiles, err := backendfw.RouteReflectors(site)
	if err != nil || len(rrFiles) != 1 {
		t.Fatalf("route reflector stanzas: %v %v", rrFiles, err)
	}
	rrMain := fmt.Sprintf(`router id 198.51.100.2;
protocol device {}
protocol direct { ipv4; ipv6; interface %q; }
protocol bfd { interface %q { interval 100 ms; multiplier 3; }; }
include %q;
`, link.B, link.B, filepath.Join(dir, "rr", "rr1.conf"))
	rendertest.WriteFiles(t, dir, map[string][]byte{
		"lb/" + bird.Include4Name: v4, "lb/" + bird.Include6Name: v6, "lb/bird.conf": lbConf,
		"rr/rr1.conf": rrFiles[0].Data, "rr/bird.conf": []byte(rrMain),
	})
	lbSock := startBird(t, lbNS, birdBin, dir, "lb")
	rrSock := startBird(t, rrNS, birdBin, dir, "rr")

	want := []string{"192.0.2.10/32", "192.0.2.20/32", "192.0.2.30/32", "192.0.2.40/32", "2001:db8::10/128", "2001:db8::20/128", "2001:db8::60/128"}
	var got []string
	var out string
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ = rendertest.Run(birdc, "-s", rrSock, "show", "route", "protocol", backendfw.ReflectorProtocol("lb1"))
		got = nil
		for _, m := range routeLine.FindAllStringSubmatch(out, -1) {
			got = append(got, m[1])
		}
		slices.Sort(got)
		if slices.Equal(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !slices.Equal(got, want) {
		lbOut, _ := rendertest.Run(birdc, "-s", lbSock, "show", "protocols", "all")
		t.Fatalf("reflector learned %v, want %v\n%s\nLB:\n%s", got, want, out, lbOut)
	}
	// The IPv6 VIPs reach the reflector with the node's IPv6 address as
	// next hop (next hop address in the ipv6 channel of an IPv4 session).
	all, _ := rendertest.Run(birdc, "-s", rrSock, "show", "route", "all", "2001:db8::10/128")
	if !strings.Contains(all, "BGP.next_hop: 2001:db8:ffff::11") {
		t.Errorf("IPv6 route next hop:\n%s", all)
	}
	exported, _ := rendertest.Run(birdc, "-s", lbSock, "show", "route", "export", bird.ProtocolName("rr1"))
	if !strings.Contains(exported, "198.18.0.0/24") {
		t.Errorf("LB did not offer the non-VIP route (the test would not prove the reflector's filter):\n%s", exported)
	}
	bfd, _ := rendertest.Run(birdc, "-s", rrSock, "show", "bfd", "sessions")
	if !strings.Contains(bfd, "198.51.100.11") || !strings.Contains(bfd, "Up") {
		t.Errorf("BFD session not up at the reflector:\n%s", bfd)
	}
}

// TestLiveAttributes runs lb1's bird.conf of the BGP-rich site against the
// rendered route reflector stanza (both including one password file, the
// session multihop with graceful restart): the reflector sees the node's
// and the VIP's communities, large communities, MED and local preference
// on the VIP route; when the include marks the routes with
// GRACEFUL_SHUTDOWN (what the agent writes during lbctl drain --all) the
// reflector sees the community and local preference 0.
func TestLiveAttributes(t *testing.T) {
	netnstest.RequireRoot(t)
	birdBin := rendertest.NeedTool(t, "bird")
	birdc := rendertest.NeedTool(t, "birdc")
	dir := t.TempDir()
	pw := filepath.Join(dir, "rr1.password")
	site := rendertest.SiteBGP(pw)
	lb := *site.Node("lb1")
	lb.RouteReflectors = lb.RouteReflectors[:1]
	lb.BFD = false
	site.Nodes = []model.Node{lb}

	lbNS := netnstest.New(t, "rbgp")
	rrNS := netnstest.New(t, "rbgp")
	netnstest.Veth(t, lbNS, "198.51.100.11/24", rrNS, "198.51.100.2/24")
	lbConf, err := bird.Config(site, &lb, bird.Options{IncludeDir: filepath.Join(dir, "lb"), HoldTime: 3, KeepaliveTime: 1}.FastTimers())
	if err != nil {
		t.Fatal(err)
	}
	rrFiles, err := backendfw.RouteReflectors(site)
	if err != nil || len(rrFiles) != 1 {
		t.Fatalf("route reflector stanzas: %v %v", rrFiles, err)
	}
	v4, v6 := bird.Announce(bird.Prefixes(site))
	rrMain := fmt.Sprintf("router id 198.51.100.2;\nprotocol device {}\nprotocol direct { ipv4; ipv6; }\ninclude %q;\n", filepath.Join(dir, "rr", "rr1.conf"))
	rendertest.WriteFiles(t, dir, map[string][]byte{
		"rr1.password":            []byte(`password "s3cr3t w0rd";` + "\n"),
		"lb/" + bird.Include4Name: v4, "lb/" + bird.Include6Name: v6, "lb/bird.conf": lbConf,
		"rr/rr1.conf": rrFiles[0].Data, "rr/bird.conf": []byte(rrMain),
	})
	lbSock := startBird(t, lbNS, birdBin, dir, "lb")
	rrSock := startBird(t, rrNS, birdBin, dir, "rr")

	wantAttrs := []string{"BGP.community: (65000,1) (65000,100) (65000,200)", "BGP.large_community: (65000, 0, 1) (65000, 2, 200)",
		"BGP.med: 10", "BGP.local_pref: 200"}
	out := waitRoute(t, birdc, rrSock, "192.0.2.10/32", wantAttrs)
	if strings.Contains(out, "(65000, 2, 20)") {
		t.Errorf("VIP 192.0.2.10 carries 192.0.2.20's large community:\n%s", out)
	}
	waitRoute(t, birdc, rrSock, "192.0.2.20/32", []string{"BGP.large_community: (65000, 0, 1) (65000, 2, 20)", "BGP.community: (65000,1) (65000,100)\n"})
	proto, _ := rendertest.Run(birdc, "-s", rrSock, "show", "protocols", "all", backendfw.ReflectorProtocol("lb1"))
	// The node's capabilities (graceful restart with its time) and the
	// multihop session, as the reflector sees them.
	if _, caps, _ := strings.Cut(proto, "Neighbor capabilities"); !strings.Contains(caps, "Restart time: 90") || !strings.Contains(caps, "multihop") {
		t.Errorf("node did not offer graceful restart (90 s) on a multihop session:\n%s", proto)
	}

	gshut := strings.ReplaceAll(string(v4), "blackhole;", "blackhole { bgp_community.add((65535,0)); };")
	rendertest.WriteFiles(t, dir, map[string][]byte{"lb/" + bird.Include4Name: []byte(gshut)})
	if out, err := rendertest.Run(birdc, "-s", lbSock, "configure"); err != nil {
		t.Fatalf("configure: %v\n%s", err, out)
	}
	waitRoute(t, birdc, rrSock, "192.0.2.10/32", []string{"(65535,0)", "BGP.local_pref: 0"})
}

// waitRoute waits until "show route all PREFIX" at the BIRD of sock shows
// every string of want, and returns the output.
func waitRoute(t *testing.T, birdc, sock, prefix string, want []string) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, _ = rendertest.Run(birdc, "-s", sock, "show", "route", "all", prefix)
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(out, w) })
		if len(missing) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("route %s lacks %q:\n%s", prefix, missing, out)
		}
	}
}

// startBird runs BIRD in ns with dir/name/bird.conf and returns its control
// socket; its output is logged if the test fails.
func startBird(t *testing.T, ns *netnstest.NS, birdBin, dir, name string) string {
	t.Helper()
	sock := filepath.Join(dir, name, "bird.ctl")
	p := ns.Start(t, birdBin, "-f", "-c", filepath.Join(dir, name, "bird.conf"), "-s", sock, "-P", filepath.Join(dir, name, "bird.pid"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bird %s:\n%s", name, p.Output())
		}
	})
	return sock
}
