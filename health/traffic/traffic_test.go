package traffic

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestParseRealAnswer(t *testing.T) {
	b, err := os.ReadFile("testdata/show-info-stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	info, rows, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if info.StartTime != 1796181196 || info.CumConns != 66 || info.CumReq != 3 {
		t.Errorf("info %+v", info)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(rows), rows)
	}
	f, w1, w2, b1 := rows[0], rows[1], rows[2], rows[3]
	if f.Kind != Frontend || f.Proxy != "fe-80" || f.Requests != 1 || f.Responses[4] != 1 || f.BytesIn != 82 || f.Retries != -1 {
		t.Errorf("frontend %+v", f)
	}
	if w1.Kind != Server || w1.Name != "web1" || State(w1.Status) != "DOWN" || w1.CheckStatus != "L4CON" || w1.Up() {
		t.Errorf("web1 %+v", w1)
	}
	if State(w2.Status) != "MAINT" || w2.Weight != 5 {
		t.Errorf("web2 %+v", w2)
	}
	if b1.Kind != Backend || b1.ConnErrors != 1 || b1.Sessions != 1 {
		t.Errorf("backend %+v", b1)
	}
}

func TestParseRefusesOtherAnswers(t *testing.T) {
	for _, in := range []string{"", "Unknown command\n", "# foo,bar\n1,2\n"} {
		if _, _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
}

func TestState(t *testing.T) {
	for in, want := range map[string]string{"UP": "UP", "UP 1/3": "UP", "DOWN 1/2": "DOWN", "MAINT (via be/x)": "MAINT",
		"no check": "NOCHECK", "DRAIN": "DRAIN", "NOLB": "NOLB", "MAINT(resolution)": "MAINT"} {
		if got := State(in); got != want {
			t.Errorf("State(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeSocket answers every connection with the same bytes, like HAProxy's
// admin socket answers "show info;show stat".
func fakeSocket(t testing.TB, dir, name string, answer []byte) string {
	path := filepath.Join(dir, name)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256)
				_, _ = c.Read(buf)
				_, _ = c.Write(answer)
			}()
		}
	}()
	return path
}

// A VIP's worth of "show stat": two HTTP frontends (80, 443) and two
// backends of two servers each, the shape of a typical VIP of
// examples/campus (typo3: two services, two servers each).
func siteAnswer(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/show-info-stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "# pxname,")
	head, stat := string(b[:i]), strings.Split(string(b[i:]), "\n")
	var sb strings.Builder
	sb.WriteString(head)
	sb.WriteString(stat[0] + "\n")
	for f := range 2 {
		sb.WriteString(strings.Replace(stat[1], "fe-80", fmt.Sprintf("fe-%d", 80+f), 1) + "\n")
	}
	for be := range 2 {
		for s := range 2 {
			l := strings.Replace(stat[2], "web.a:8080", fmt.Sprintf("web.%d:8080", be), 1)
			sb.WriteString(strings.Replace(l, ",web1,", fmt.Sprintf(",web%d,", s), 1) + "\n")
		}
		sb.WriteString(strings.Replace(stat[4], "web.a:8080", fmt.Sprintf("web.%d:8080", be), 1) + "\n")
	}
	sb.WriteString("\n")
	return []byte(sb.String())
}

func fakeTargets(t testing.TB, n int) []Target {
	dir := t.TempDir()
	answer := siteAnswer(t)
	var ts []Target
	for i := range n {
		ts = append(ts, Target{VIP: fmt.Sprintf("192.0.2.%d", i%250), Socket: fakeSocket(t, dir, fmt.Sprintf("%d.sock", i), answer)})
		if i >= 250 {
			ts[i].VIP = fmt.Sprintf("2001:db8::%x", i)
		}
	}
	return ts
}

// scrape serves /metrics once through Handler and parses the answer.
func scrape(t testing.TB, r *Reader) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(prometheus.NewRegistry(), r, 0).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, text)
	}
	return text, mfs
}

func TestMetricsLintAndCache(t *testing.T) {
	targets := fakeTargets(t, 3)
	targets = append(targets, Target{VIP: "192.0.2.99", Socket: filepath.Join(t.TempDir(), "missing.sock")})
	r := &Reader{Targets: func() []Target { return targets }, MaxAge: time.Hour}
	text, got := scrape(t, r)
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	up := got["lbctl_haproxy_up"]
	if up == nil || len(up.Metric) != 4 {
		t.Fatalf("lbctl_haproxy_up: %v", up)
	}
	for _, m := range up.Metric {
		want := 1.0
		if m.Label[0].GetValue() == "192.0.2.99" {
			want = 0
		}
		if m.Untyped.GetValue()+m.Gauge.GetValue() != want {
			t.Errorf("up %v = %v, want %v", m.Label, m.Gauge.GetValue(), want)
		}
	}
	if n := len(got["lbctl_haproxy_server_state"].GetMetric()); n != 3*4*len(States) {
		t.Errorf("%d server_state series, want %d", n, 3*4*len(States))
	}
	for _, name := range Names() {
		if got[name] == nil && !strings.Contains(name, "tls_handshake") {
			t.Errorf("Names() lists %s, not in a scrape", name)
		}
	}
	// The cache: a second scrape within MaxAge does not read again.
	at := r.Last()[0].At
	scrape(t, r)
	if r.Last()[0].At != at {
		t.Error("second scrape within MaxAge read the sockets again")
	}
}

// startHAProxy runs a real HAProxy with one HTTP frontend on loopback in
// front of backend and returns the frontend's URL and the admin socket.
func startHAProxy(t *testing.T, backend string) (string, string) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skipf("needs haproxy (make deps): %v", err)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sock := filepath.Join(dir, "admin.sock")
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe-80
    bind %s
    default_backend web.a:8080
backend web.a:8080
    default-server check inter 200ms
    server web1 %s
    server web2 127.0.0.1:1 disabled
`, sock, addr, backend)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("haproxy", "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := ReadOne(context.Background(), Target{Socket: sock}, time.Second)
		if s.Err == nil && len(s.Rows) > 0 {
			for _, r := range s.Rows {
				if r.Name == "web1" && r.Up() {
					return "http://" + addr, sock
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not come up with web1 UP: %v %+v", s.Err, s.Rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func metricValue(t *testing.T, r *Reader, name string, labels map[string]string) float64 {
	t.Helper()
	_, mfs := scrape(t, r)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Untyped != nil:
				return m.Untyped.GetValue()
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

// Against a real HAProxy: n requests through the frontend add exactly n to
// its request and 2xx counters and to the server's sessions.
func TestRealHAProxyCounts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	url, sock := startHAProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	r := &Reader{Targets: func() []Target {
		return []Target{{VIP: "192.0.2.10", Socket: sock, Services: map[string]string{"web.a:8080": "web/a"}}}
	}, MaxAge: -1}
	reg := r
	fl := map[string]string{"vip": "192.0.2.10", "frontend": "fe-80"}
	sl := map[string]string{"vip": "192.0.2.10", "service": "web/a", "backend": "web.a:8080", "server": "web1"}
	req0 := metricValue(t, reg, "lbctl_haproxy_frontend_http_requests_total", fl)
	ok0 := metricValue(t, reg, "lbctl_haproxy_frontend_http_responses_total", map[string]string{"frontend": "fe-80", "code": "2xx"})
	sess0 := metricValue(t, reg, "lbctl_haproxy_server_sessions_total", sl)
	const n = 17
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for range n {
		resp, err := hc.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if d := metricValue(t, reg, "lbctl_haproxy_frontend_http_requests_total", fl) - req0; d != n {
		t.Errorf("requests counter rose by %v, want %d", d, n)
	}
	if d := metricValue(t, reg, "lbctl_haproxy_frontend_http_responses_total", map[string]string{"frontend": "fe-80", "code": "2xx"}) - ok0; d != n {
		t.Errorf("2xx counter rose by %v, want %d", d, n)
	}
	if d := metricValue(t, reg, "lbctl_haproxy_server_sessions_total", sl) - sess0; d != n {
		t.Errorf("web1 sessions rose by %v, want %d", d, n)
	}
	if v := metricValue(t, reg, "lbctl_haproxy_server_state", map[string]string{"server": "web2", "state": "MAINT"}); v != 1 {
		t.Errorf("web2 (disabled) MAINT = %v", v)
	}
	if v := metricValue(t, reg, "lbctl_haproxy_server_check_status", map[string]string{"server": "web1"}); v != 1 {
		t.Errorf("web1 check status %v", v)
	}
	if v := metricValue(t, reg, "lbctl_haproxy_process_start_time_seconds", nil); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("start time %v", v)
	}
}

// BenchmarkScrape reads N fake admin sockets (a busy VIP's answer each)
// and encodes the metrics, as one Prometheus scrape does.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{8, 150} {
		b.Run(fmt.Sprintf("vips=%d", n), func(b *testing.B) {
			targets := fakeTargets(b, n)
			r := &Reader{Targets: func() []Target { return targets }, MaxAge: -1}
			h := Handler(prometheus.NewRegistry(), r, 0)
			b.ReportAllocs()
			cpu0 := cpuTime()
			req := httptest.NewRequest("GET", "/metrics", nil)
			var w countWriter
			for b.Loop() {
				w.n = 0
				h.ServeHTTP(&w, req)
				if w.n == 0 {
					b.Fatal("empty scrape")
				}
			}
			b.ReportMetric(float64(w.n), "bytes/scrape")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the process' user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countWriter is an http.ResponseWriter that only counts, like a socket
// to Prometheus would cost nothing more than a write.
type countWriter struct{ n int }

func (w *countWriter) Header() http.Header         { return http.Header{} }
func (w *countWriter) WriteHeader(int)             {}
func (w *countWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// BenchmarkScrapeRealHAProxy scrapes N real HAProxy processes of a
// typical VIP's shape (two HTTP frontends, on unix sockets here, and two
// backends of two servers).
func BenchmarkScrapeRealHAProxy(b *testing.B) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		b.Skipf("needs haproxy: %v", err)
	}
	for _, n := range []int{8, 150} {
		b.Run(fmt.Sprintf("vips=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			var targets []Target
			for i := range n {
				sock := filepath.Join(dir, fmt.Sprintf("%d.sock", i))
				cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
    maxconn 100
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe-80
    bind unix@%s.80
    default_backend web.a:80
frontend fe-443
    bind unix@%s.443
    default_backend web.b:443
backend web.a:80
    server web1 127.0.0.1:1
    server web2 127.0.0.1:2
backend web.b:443
    server web1 127.0.0.1:1
    server web2 127.0.0.1:2
`, sock, sock, sock)
				path := filepath.Join(dir, fmt.Sprintf("%d.cfg", i))
				if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
					b.Fatal(err)
				}
				cmd := exec.Command("haproxy", "-db", "-f", path)
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				targets = append(targets, Target{VIP: fmt.Sprintf("vip%d", i), Socket: sock})
			}
			deadline := time.Now().Add(60 * time.Second)
			for _, t := range targets {
				for ReadOne(context.Background(), t, time.Second).Err != nil {
					if time.Now().After(deadline) {
						b.Fatalf("%s did not answer", t.Socket)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			r := &Reader{Targets: func() []Target { return targets }, MaxAge: -1}
			h := Handler(prometheus.NewRegistry(), r, 0)
			req := httptest.NewRequest("GET", "/metrics", nil)
			var w countWriter
			cpu0 := cpuTime()
			for b.Loop() {
				w.n = 0
				h.ServeHTTP(&w, req)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "agent-cpu-ms/op")
			b.ReportMetric(float64(w.n), "bytes/scrape")
			for _, s := range r.Last() {
				if s.Err != nil {
					b.Fatal(s.Err)
				}
			}
		})
	}
}
