package testbed_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health/bird/birdtest"
	"github.com/lbctl/lbctl/test/testbed"
)

// backendEnv makes the test binary act as `lbctl-testbed serve-backend`.
const backendEnv = "LBTB_TEST_SERVE_BACKEND"

func TestMain(m *testing.M) {
	if os.Getenv(backendEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := testbed.BackendMain(ctx, os.Args[1:])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testModel has two services on two VIPs and three backends (one IPv6).
func testModel() *model.Site {
	check := model.Check{Type: model.CheckHTTP, Method: "GET", Path: "/", IntervalMS: 1000, Rise: 2, Fall: 2}
	node := func(name, addr string) model.Node {
		a := netip.MustParseAddr
		return model.Node{Hostname: name, RouterID: a(addr), ASN: 65000, BFD: true, VIPInterface: "lo",
			RouteReflectors: []model.Peer{{Name: "rr1", Address: a("198.51.100.2"), ASN: 65000}},
			Addresses:       []netip.Addr{a(addr), a("2001:db8:ffff::" + addr[len(addr)-2:])}}
	}
	return &model.Site{
		FormatVersion: model.FormatVersion,
		Name:          "tb",
		Services: []model.Service{
			{
				Name: "apps/erp", FQDN: "erp.tb.example", Mode: model.ModeTCP, VIP: "192.0.2.20",
				Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.20")},
				Listeners: []model.Listener{{Port: 3200, IPv4: true, Action: model.ActionServe, BackendPort: 3200}},
				Backend: model.Backend{Servers: []model.Server{{Name: "erp1", Address: netip.MustParseAddr("203.0.113.41")}},
					Port: 3200, Software: "generic", Balance: "leastconn", Proxy: model.ProxyV2, MinUp: 1,
					Check: model.Check{Type: model.CheckTCP, IntervalMS: 1000, Rise: 2, Fall: 2}},
			},
			{
				Name: "web/site", FQDN: "site.tb.example", Aliases: []string{"www.tb.example"}, Mode: model.ModeHTTP,
				VIP: "192.0.2.10", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8:10::10")},
				Listeners: []model.Listener{
					{Port: 80, IPv4: true, IPv6: true, Action: model.ActionServe, BackendPort: 80},
					{Port: 443, IPv4: true, IPv6: true, TLS: true, Action: model.ActionServe, BackendPort: 80},
				},
				TLS: &model.TLS{Certificate: "site", MinVersion: "1.2", CipherProfile: "intermediate"},
				Backend: model.Backend{Servers: []model.Server{
					{Name: "web1", Address: netip.MustParseAddr("203.0.113.21")}, {Name: "web2", Address: netip.MustParseAddr("2001:db8:203::22")}},
					Port: 80, Software: "nginx", Balance: "roundrobin", Proxy: model.ProxyNone, ForwardFor: true,
					MinUp: 1, Check: check},
			},
		},
		Nodes: []model.Node{node("lb1", "198.51.100.11"), node("lb2", "198.51.100.12")},
	}
}

// standIn is a BIRD configuration for an LB node announcing prefixes to the
// route reflector, as the product's rendered one will.
func standIn(dir string, n *testbed.Node, v4, v6 []string) string {
	c := birdtest.Announcer(n.Core4.String(), dir+"/bird.log", testbed.RRCore4.String(), 65000,
		birdtest.Blackholes(v4), birdtest.Blackholes(v6))
	c.BFD, c.Sessions[0].BFD = "core", true
	c.Sessions[0].IPv6 = fmt.Sprintf(`import none; export where proto = "vips6"; next hop address %s;`, n.Core6)
	return c.String()
}

func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and runs BIRD in them")
	}
	for _, tool := range []string{"ip", "nsenter", "unshare", "bird"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// launchSleep provides lb2's namespace through the LaunchNode hook (as
// systemd as PID 1 will): a process in a new network namespace.
func launchSleep(t *testing.T) (func(context.Context, testbed.Node) (testbed.Launched, error), *int) {
	pid := new(int)
	return func(ctx context.Context, n testbed.Node) (testbed.Launched, error) {
		if n.Name != "lb2" {
			return testbed.Launched{}, nil
		}
		cmd := exec.Command("unshare", "--net", "--", "sleep", "600")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return testbed.Launched{}, err
		}
		go cmd.Wait()
		*pid = cmd.Process.Pid
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", *pid)); strings.TrimSpace(string(comm)) == "sleep" {
				return testbed.Launched{PID: *pid}, nil
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Kill()
		return testbed.Launched{}, errors.New("unshare did not exec sleep")
	}, pid
}

// TestSite brings a site up, announces VIPs from stand-in BIRDs on both LB
// nodes, and checks the ECMP routes at the router, traffic from the client
// through an LB node to backends (HTTP over IPv4 and IPv6, TCP with a PROXY
// v2 header), withdrawal, reloading from the state file, and that Down
// leaves nothing.
func TestSite(t *testing.T) {
	requireRoot(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	b := make([]byte, 3)
	rand.Read(b)
	prefix := "lbtb-t" + hex.EncodeToString(b) + "-"
	dir := filepath.Join(t.TempDir(), "tb")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	launch, sleepPID := launchSleep(t)
	s, err := testbed.Up(ctx, testModel(), testbed.Options{
		Dir: dir, Prefix: prefix, BackendCommand: []string{exe},
		BackendEnv: []string{backendEnv + "=1"}, LaunchNode: launch,
	})
	if err != nil {
		t.Fatal(err)
	}
	var recorded []testbed.Proc
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			if err := s.Down(context.Background()); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	t.Logf("up in %v: %d namespaces, %d processes", time.Since(began).Round(time.Millisecond), len(s.Namespaces), len(s.Procs))

	// Backends: one namespace per address, ports by protocol.
	var names []string
	for _, be := range s.Backends {
		names = append(names, fmt.Sprintf("%s=%s:%v/%v", be.Name, be.Address, be.HTTP, be.TCP))
	}
	if got, want := strings.Join(names, " "), "web1=203.0.113.21:[80]/[] erp1=203.0.113.41:[]/[3200] web2=2001:db8:203::22:[80]/[]"; got != want {
		t.Errorf("backends: %s, want %s", got, want)
	}
	for _, n := range s.Nodes {
		if _, err := os.Stat(filepath.Join(n.CertDir, "site.pem")); err != nil {
			t.Errorf("node %s: certificate: %v", n.Name, err)
		}
	}
	if s.Node("lb2").PID != *sleepPID || s.Node("lb1").PID != 0 {
		t.Errorf("launched PIDs: lb1 %d, lb2 %d, want 0 and %d", s.Node("lb1").PID, s.Node("lb2").PID, *sleepPID)
	}

	// Stand-in LB BIRDs: lb1 announces the VIP and the backend networks
	// (so the client reaches backends through it), lb2 the VIP only.
	for _, a := range []struct {
		node   string
		v4, v6 []string
	}{
		{"lb1", []string{"192.0.2.10/32", "203.0.113.0/24"}, []string{"2001:db8:10::10/128", "2001:db8:203::/64"}},
		{"lb2", []string{"192.0.2.10/32"}, []string{"2001:db8:10::10/128"}},
	} {
		n := s.Node(a.node)
		conf := filepath.Join(n.Dir, "standin.conf")
		if err := os.WriteFile(conf, []byte(standIn(n.Dir, n, a.v4, a.v6)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StartNodeBird(ctx, a.node, conf); err != nil {
			t.Fatal(err)
		}
	}
	ecmp := map[string]string{
		"192.0.2.10/32":       "192.0.2.10/32 via 198.51.100.11 dev br-core, via 198.51.100.12 dev br-core",
		"2001:db8:10::10/128": "2001:db8:10::10/128 via 2001:db8:100::11 dev br-core, via 2001:db8:100::12 dev br-core",
	}
	waitRoutes(t, ctx, s, ecmp)
	t.Logf("ECMP routes at the router after %v", time.Since(began).Round(time.Millisecond))

	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.OK() {
		t.Errorf("status not OK: %+v", st)
	}
	established := map[string]bool{}
	for _, ss := range st.Sessions {
		established[ss.Speaker+"/"+ss.Name] = ss.Established
	}
	for _, k := range []string{"rr/lb1", "rr/lb2", "rr/rtr", "router/reflector", "lb1/reflector", "lb2/reflector"} {
		if !established[k] {
			t.Errorf("session %s not established: %v", k, st.Sessions)
		}
	}

	// The client reaches backends by routing alone: client -> router ->
	// lb1 -> backend, and back through lb1 (the backends' gateway).
	hc, err := s.HTTPClient(map[string]netip.Addr{"site.tb.example": netip.MustParseAddr("203.0.113.21")})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://site.tb.example/", "http://[2001:db8:203::22]/x"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatalf("GET %s from the client: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "backend=web1 host=site.tb.example xff=none src=198.51.100.130:"
		if strings.Contains(u, "2001") {
			want = "backend=web2 host=[2001:db8:203::22] xff=none src=[2001:db8:c::2]:"
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), want) {
			t.Errorf("GET %s: %d %q, want prefix %q", u, resp.StatusCode, body, want)
		}
	}

	// A TCP backend decodes a PROXY v2 header.
	c, err := s.Dial(ctx, "tcp", "203.0.113.41:3200")
	if err != nil {
		t.Fatalf("dial erp1 from the client: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	hdr := testbed.AppendProxyV2(nil, netip.MustParseAddrPort("198.51.100.77:4321"), netip.MustParseAddrPort("192.0.2.20:3200"))
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if want := "backend=erp1 port=3200 proxy-src=198.51.100.77:4321 src=198.51.100.130:"; err != nil || !strings.HasPrefix(line, want) {
		t.Errorf("erp1 answered %q (%v), want prefix %q", line, err, want)
	}

	// Backends' replies can go through lb2 instead (asymmetric: requests
	// still reach them through lb1).
	if err := s.SetBackendGateway(ctx, "lb2"); err != nil {
		t.Fatal(err)
	}
	if out, err := s.Exec(ctx, s.Backends[0].NetNS, "ip", "-4", "route", "show", "default"); err != nil || !strings.Contains(string(out), "via 203.0.113.2 dev eth0") {
		t.Errorf("web1's default route after SetBackendGateway(lb2): %q %v", out, err)
	}
	if resp, err := hc.Get("http://203.0.113.21/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET web1 with replies through lb2: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Stopping lb2's BIRD withdraws its paths.
	if err := s.StopProc(ctx, "bird-lb2"); err != nil {
		t.Fatal(err)
	}
	waitRoutes(t, ctx, s, map[string]string{
		"192.0.2.10/32":       "192.0.2.10/32 via 198.51.100.11 dev br-core",
		"2001:db8:10::10/128": "2001:db8:10::10/128 via 2001:db8:100::11 dev br-core",
	})

	// Another process finds the site through the state file.
	loaded, err := testbed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loaded.Namespaces, s.Namespaces) || len(loaded.Procs) != len(s.Procs) {
		t.Errorf("loaded state differs: %v %d procs, want %v %d", loaded.Namespaces, len(loaded.Procs), s.Namespaces, len(s.Procs))
	}
	if _, err := testbed.Up(ctx, testModel(), testbed.Options{Dir: dir, Prefix: prefix}); !errors.Is(err, testbed.ErrAlreadyUp) {
		t.Errorf("second Up: %v, want ErrAlreadyUp", err)
	}

	recorded = append(recorded, s.Procs...)
	recorded = append(recorded, testbed.Proc{Role: "node-lb2", PID: s.Node("lb2").PID, Start: s.Node("lb2").PIDStart})
	downStart := time.Now()
	err = loaded.Down(ctx) // from the loaded copy, as `lbctl-testbed down` does
	downDone = true
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("down in %v", time.Since(downStart).Round(time.Millisecond))
	left, _ := filepath.Glob(filepath.Join(testbed.NetNSDir, prefix+"*"))
	if len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	for _, p := range recorded {
		if p.Alive() {
			t.Errorf("%s (PID %d) still alive after Down", p.Role, p.PID)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("testbed directory still there: %v", err)
	}
	t.Logf("whole test took %v", time.Since(began).Round(time.Millisecond))
}

// waitRoutes waits until the router's routes for the given prefixes read
// as wanted.
func waitRoutes(t *testing.T, ctx context.Context, s *testbed.Site, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		routes, err := s.Routes(ctx)
		got := map[string]string{}
		for _, r := range routes {
			got[r.Prefix.String()] = r.String()
		}
		ok := err == nil
		for p, w := range want {
			ok = ok && got[p] == w
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("router routes: %v (%v), want %v", routes, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
