package haproxy_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
)

// TestGolden renders every VIP of the feature-rich model with the default
// node paths and compares each file with testdata/<vip>/<file>.
func TestGolden(t *testing.T) {
	site := rendertest.Site()
	for i := range site.VIPs {
		v := &site.VIPs[i]
		files, err := haproxy.Render(site, v, haproxy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if files[0].Name != haproxy.ConfigName {
			t.Errorf("vip %s: first file %s, want %s", v.Name, files[0].Name, haproxy.ConfigName)
		}
		for _, f := range files {
			rendertest.Golden(t, v.Name+"/"+f.Name, f.Data)
		}
	}
}

// TestDeterministic renders twice and expects identical bytes.
func TestDeterministic(t *testing.T) {
	site := rendertest.Site()
	for i := range site.VIPs {
		a, err := haproxy.Render(site, &site.VIPs[i], haproxy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := haproxy.Render(rendertest.Site(), &site.VIPs[i], haproxy.Options{})
		if len(a) != len(b) {
			t.Fatalf("vip %s: %d files, then %d", site.VIPs[i].Name, len(a), len(b))
		}
		for j := range a {
			if a[j].Name != b[j].Name || string(a[j].Data) != string(b[j].Data) {
				t.Errorf("vip %s: %s differs between renders", site.VIPs[i].Name, a[j].Name)
			}
		}
	}
}

// TestThreadsAndCPUMap: each VIP runs its model's thread count (rule I27)
// or the node's override, and its threads are pinned to cores dealt
// round-robin in the site's VIP order.
func TestThreadsAndCPUMap(t *testing.T) {
	site := rendertest.Site()
	if len(site.VIPs) < 3 {
		t.Fatalf("want at least 3 VIPs, have %d", len(site.VIPs))
	}
	for i := range site.VIPs {
		site.VIPs[i].Threads = 1
	}
	site.VIPs[1].Threads = 2
	global := func(opts haproxy.Options, i int) []string {
		files, err := haproxy.Render(site, &site.VIPs[i], opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(string(files[0].Data), "\n") {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "nbthread ") || strings.HasPrefix(l, "cpu-map ") {
				out = append(out, l)
			}
		}
		return out
	}
	for _, tt := range []struct {
		opts haproxy.Options
		vip  int
		want []string
	}{
		{haproxy.Options{}, 0, []string{"nbthread 1"}},
		{haproxy.Options{}, 1, []string{"nbthread 2"}},
		{haproxy.Options{CPUs: 3}, 0, []string{"nbthread 1", "cpu-map 1/1 0"}},
		{haproxy.Options{CPUs: 3}, 1, []string{"nbthread 2", "cpu-map 1/1 1", "cpu-map 1/2 2"}},
		{haproxy.Options{CPUs: 3}, 2, []string{"nbthread 1", "cpu-map 1/1 0"}},
		{haproxy.Options{CPUs: 2, Threads: 2}, 2, []string{"nbthread 2", "cpu-map 1/1 0", "cpu-map 1/2 1"}},
		{haproxy.Options{CPUs: 4, Threads: 1}, 2, []string{"nbthread 1", "cpu-map 1/1 2"}},
	} {
		if got := global(tt.opts, tt.vip); strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
			t.Errorf("VIP %d with %+v: %q, want %q", tt.vip, tt.opts, got, tt.want)
		}
	}
}

// CheckSite renders every VIP of site into a temporary tree with test
// certificates and runs "haproxy -c" on each configuration; warnings fail
// the test too.
func CheckSite(t *testing.T, site *model.Site) {
	t.Helper()
	hp := rendertest.NeedTool(t, "haproxy")
	dir := t.TempDir()
	opts := haproxy.Options{
		CertDir:    filepath.Join(dir, "certs"),
		VIPDir:     filepath.Join(dir, "vips"),
		RuntimeDir: filepath.Join(dir, "run"),
		// cpu-map lines are checked too (on any machine: haproxy -c does
		// not apply them), and shared checks.
		CPUs:         2,
		SharedChecks: haproxy.SharedChecks(site),
	}
	for _, c := range rendertest.Certificates(site) {
		rendertest.WriteCert(t, opts.CertDir, c)
	}
	if len(site.VIPs) == 0 {
		t.Fatal("site has no VIPs")
	}
	for i := range site.VIPs {
		v := &site.VIPs[i]
		files, err := haproxy.Render(site, v, opts)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][]byte{}
		for _, f := range files {
			m[f.Name] = f.Data
		}
		vdir := filepath.Join(opts.VIPDir, v.Name)
		rendertest.WriteFiles(t, vdir, m)
		cfg := filepath.Join(vdir, haproxy.ConfigName)
		out, err := rendertest.Run(hp, "-c", "-f", cfg)
		if err != nil {
			t.Errorf("vip %s: haproxy -c refused the configuration: %v\n%s\n--- %s:\n%s", v.Name, err, out, cfg, numbered(m[haproxy.ConfigName]))
			continue
		}
		if !strings.Contains(out, "Configuration file is valid") || strings.Contains(out, "[WARNING]") {
			t.Errorf("vip %s: haproxy -c: %s", v.Name, out)
		}
	}
}

func numbered(b []byte) string {
	var sb strings.Builder
	for i, l := range strings.Split(string(b), "\n") {
		sb.WriteString(strings.TrimSpace(strings.Repeat(" ", 4-len(itoa(i+1)))+itoa(i+1)) + " " + l + "\n")
	}
	return sb.String()
}

func itoa(i int) string {
	s := ""
	for i >= 10 {
		s = string(rune('0'+i%10)) + s
		i /= 10
	}
	return string(rune('0'+i)) + s
}

// TestHAProxyAccepts runs haproxy -c on every VIP of the feature-rich model.
func TestHAProxyAccepts(t *testing.T) {
	CheckSite(t, rendertest.Site())
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// TestCampusHAProxyAccepts resolves examples/campus and runs haproxy -c on
// every VIP's configuration.
func TestCampusHAProxyAccepts(t *testing.T) {
	CheckSite(t, rendertest.Campus(t))
}

// TestNameCollisions: service names that sanitise to the same identifier
// still get distinct ACL and backend names, and HAProxy accepts the result.
func TestNameCollisions(t *testing.T) {
	site := rendertest.Site()
	v := site.VIP("192.0.2.10")
	rename := map[string]string{"web/a": "web/x.y", "web/b": "web.x/y", "web/c": "web/x_y"}
	for i := range site.Services {
		if n, ok := rename[site.Services[i].Name]; ok {
			site.Services[i].Name = n
		}
	}
	for i, s := range v.Services {
		v.Services[i] = rename[s]
	}
	for i := range v.Ports {
		for j, s := range v.Ports[i].Services {
			v.Ports[i].Services[j] = rename[s]
		}
	}
	bs, err := haproxy.Backends(site, v)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, b := range bs {
		if seen[b.Name] {
			t.Errorf("duplicate backend %s", b.Name)
		}
		seen[b.Name] = true
	}
	if len(bs) != 3 {
		t.Errorf("backends %+v", bs)
	}
	CheckSite(t, site)
}

func TestBackends(t *testing.T) {
	site := rendertest.Site()
	bs, err := haproxy.Backends(site, site.VIP("192.0.2.20"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, b.Name+"/"+b.Service+"/"+itoa(b.Port)+"/"+itoa(b.MinUp))
	}
	want := "mail.imap:993/mail/imap/993/1 mail.smtp:25/mail/smtp/25/1 mail.smtp:465/mail/smtp/465/1 mail.smtp:587/mail/smtp/587/1"
	if strings.Join(got, " ") != want {
		t.Errorf("backends:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
}

// TestErrors: what the renderer cannot express is reported, all at once.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*model.Site)
		want   []string
	}{
		{"bad address", func(s *model.Site) { s.VIPs[0].Addresses[0] = netip.MustParseAddr("::ffff:192.0.2.30") }, []string{`address "::ffff:192.0.2.30"`}},
		{"unknown service", func(s *model.Site) { s.VIPs[0].Services = append(s.VIPs[0].Services, "nope") }, []string{"service nope: not in the site"}},
		{"tls without policy", func(s *model.Site) { s.Service("web/a").TLS = nil }, []string{"terminates TLS but the service has no TLS policy"}},
		{"bad profile and version", func(s *model.Site) {
			s.Service("web/a").TLS.CipherProfile = "fancy"
			s.Service("web/c").TLS.MinVersion = "1.1"
		}, []string{`cipher_profile "fancy"`, `min_version "1.1"`}},
		{"bad check", func(s *model.Site) { s.Service("web/a").Backend.Check.ExpectStatus = "2x0" }, []string{`expect status "2x0"`}},
		{"redirect in tcp", func(s *model.Site) { s.Service("mail/imap").Listeners[0].Action = model.ActionRedirectHTTPS }, []string{"redirect to https needs mode http"}},
		{"line break in redirect", func(s *model.Site) { s.Service("web/a").Redirects[0].To = "/a\nglobal" }, []string{"redirect to"}},
		{"carriage return in check host", func(s *model.Site) { s.Service("web/a").Backend.Check.Host = "a.example\rx" }, []string{"control character U+000D"}},
		{"line break in check method", func(s *model.Site) {
			s.Service("web/a").Backend.Check.Method = "GET\nglobal\n    stats socket ipv4@127.0.0.1:9999 level admin"
		}, []string{"control character U+000A"}},
		{"line break in site name", func(s *model.Site) { s.Name = "x\nglobal" }, []string{"control character U+000A"}},
		{"certificate path", func(s *model.Site) { s.Service("web/a").TLS.Certificate = "../x" }, []string{"certificate name"}},
		{"bad proxy", func(s *model.Site) { s.Service("mail/smtp").Backend.Proxy = "v3" }, []string{`proxy protocol "v3"`}},
	} {
		site := rendertest.Site()
		tc.change(site)
		var errs []string
		for i := range site.VIPs {
			if _, err := haproxy.Render(site, &site.VIPs[i], haproxy.Options{}); err != nil {
				errs = append(errs, err.Error())
			}
		}
		all := strings.Join(errs, "\n")
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: error lacks %q:\n%s", tc.name, w, all)
			}
		}
	}
}

// TestInference checks the inference rule the renderer applies (the other
// rules of docs/intents.md are tested in bundle/intent).
func TestInference(t *testing.T) {
	hardStop := func(t *testing.T, site *model.Site, vip string, opts haproxy.Options) string {
		t.Helper()
		files, err := haproxy.Render(site, site.VIP(vip), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(files[0].Data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "hard-stop-after "); ok {
				return v
			}
		}
		t.Fatalf("vip %s: no hard-stop-after line", vip)
		return ""
	}
	// The lab site's web VIP 192.0.2.10 has web/a (tunnel 1h), web/b and
	// web/c (client and server 30s).
	for _, tc := range []struct {
		name   string
		change func(*model.Site)
		opts   haproxy.Options
		want   string
	}{
		{"short timeouts get the 1h floor", func(s *model.Site) { s.Service("web/a").Timeouts.TunnelMS = 0 }, haproxy.Options{}, "1h"},
		{"a longer tunnel timeout wins", func(s *model.Site) { s.Service("web/a").Timeouts.TunnelMS = 2 * 3600000 }, haproxy.Options{}, "2h"},
		{"a longer client timeout wins", func(s *model.Site) { s.Service("web/b").Timeouts.ClientMS = 3 * 3600000 }, haproxy.Options{}, "3h"},
		{"a longer server timeout wins", func(s *model.Site) { s.Service("web/c").Timeouts.ServerMS = 5400000 }, haproxy.Options{}, "90m"},
		{"the longest of all services on the VIP", func(s *model.Site) {
			s.Service("web/a").Timeouts.TunnelMS = 4 * 3600000
			s.Service("web/b").Timeouts.ServerMS = 6 * 3600000
			s.Service("web/c").Timeouts.ClientMS = 5 * 3600000
		}, haproxy.Options{}, "6h"},
		{"the floor comes from Options", func(*model.Site) {}, haproxy.Options{HardStopAfter: 2 * time.Hour}, "2h"},
	} {
		t.Run("I26 "+tc.name, func(t *testing.T) {
			site := rendertest.Site()
			tc.change(site)
			if got := hardStop(t, site, "192.0.2.10", tc.opts); got != tc.want {
				t.Errorf("hard-stop-after %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("I26 campus ERP keeps its 8h sessions across reloads", func(t *testing.T) {
		site := rendertest.Campus(t)
		erp := site.Service("legacy/erp")
		if erp == nil {
			t.Fatal("examples/campus has no legacy/erp")
		}
		if got := hardStop(t, site, erp.VIP, haproxy.Options{}); got != "8h" {
			t.Errorf("vip %s: hard-stop-after %s, want 8h", erp.VIP, got)
		}
		for _, v := range site.VIPs {
			if v.Name == erp.VIP {
				continue
			}
			long := 0
			for _, n := range v.Services {
				tm := site.Service(n).Timeouts
				long = max(long, tm.ClientMS, tm.ServerMS, tm.TunnelMS)
			}
			got := hardStop(t, site, v.Name, haproxy.Options{})
			if long <= 3600000 && got != "1h" || long > 3600000 && got == "1h" {
				t.Errorf("vip %s: longest timeout %dms, hard-stop-after %s", v.Name, long, got)
			}
		}
	})
}

// TestSharedChecks: a server that the services of three VIPs check is
// checked by each of them every three intervals (fastinter at the plain
// interval, observe layer4), so the checks reaching it stay one per
// interval per node; those VIPs spread their checks; haproxy -c accepts
// the configuration.
func TestSharedChecks(t *testing.T) {
	site := rendertest.Site()
	var shared []*model.Service
	seen := map[string]bool{}
	for i := range site.Services {
		s := &site.Services[i]
		if s.Backend.Check.Type != model.CheckNone && s.Backend.Check.Type != "" && !s.Transparent && !s.Backend.TLS && !seen[s.VIP] {
			seen[s.VIP] = true
			shared = append(shared, s)
		}
	}
	if len(shared) < 3 {
		t.Fatalf("want 3 checked services on distinct VIPs, have %d", len(shared))
	}
	shared = shared[:3]
	srv := model.Server{Name: "shared1", Address: netip.MustParseAddr("203.0.113.200")}
	for _, s := range shared {
		s.Backend.Servers = []model.Server{srv}
		s.Backend.Port = 8080
		s.Backend.Check.IntervalMS = 2000
		for j := range s.Listeners {
			s.Listeners[j].BackendPort = 0
		}
	}
	counts := haproxy.SharedChecks(site)
	if n := counts[netip.MustParseAddrPort("203.0.113.200:8080")]; n != 3 {
		t.Fatalf("SharedChecks: 203.0.113.200:8080 checked by %d VIPs, want 3 (%v)", n, counts)
	}
	for _, s := range shared {
		files, err := haproxy.Render(site, site.VIP(s.VIP), haproxy.Options{SharedChecks: counts})
		if err != nil {
			t.Fatal(err)
		}
		cfg := string(files[0].Data)
		if !strings.Contains(cfg, "203.0.113.200:8080 inter 6s fastinter 2s observe layer4 error-limit 1 on-error fastinter") {
			t.Errorf("VIP %s: shared server line without the scaled interval:\n%s", s.VIP, cfg)
		}
		if !strings.Contains(cfg, "spread-checks 25") {
			t.Errorf("VIP %s: no spread-checks", s.VIP)
		}
	}
	// Without the counts every server is checked at its own interval.
	files, err := haproxy.Render(site, site.VIP(shared[0].VIP), haproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := string(files[0].Data); strings.Contains(cfg, "fastinter") || strings.Contains(cfg, "spread-checks") {
		t.Errorf("without SharedChecks:\n%s", cfg)
	}
	CheckSite(t, site)
}
