package packaging

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/health/traffic"
)

// recorder is a Registerer that keeps the metric names of what is
// registered with it, from the collectors' descriptions.
type recorder struct{ names []string }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 100)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

// exported lists every metric the agent's /metrics can carry: its
// registry (agent metrics, Go and process collectors, as node/setup
// registers them) and the HAProxy traffic metrics.
func exported() []string {
	r := &recorder{}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	agent.NewMetrics(r)
	return append(r.names, traffic.Names()...)
}

var (
	promString  = regexp.MustCompile(`"(\\.|[^"\\])*"`)
	promBraces  = regexp.MustCompile(`\{[^}]*\}`)
	promRange   = regexp.MustCompile(`\[[^\]]*\]`)
	promGroup   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	keywords    = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// metricNames returns the metric names a PromQL expression selects:
// identifiers outside label matchers, ranges, grouping clauses and
// strings that are not a function call or a keyword.
func metricNames(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	e = promBraces.ReplaceAllString(e, " ")
	e = promRange.ReplaceAllString(e, " ")
	e = promGroup.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] == '$' || (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9') || e[loc[0]-1] == '.') {
			continue // a variable or part of a number (1e3)
		}
		if strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " "), "(") || slices.Contains(keywords, strings.ToLower(id)) {
			continue
		}
		out = append(out, id)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`sum by (service, code) (rate(lbctl_x_total{vip=~"$vip", code="5xx"}[$__rate_interval])) / on (a) group_left lbctl_y or vector(0) > 0.5e3`)
	if !slices.Equal(got, []string{"lbctl_x_total", "lbctl_y"}) {
		t.Errorf("metricNames: %v", got)
	}
}

// Every query of the shipped dashboard names metrics the agent exports,
// and every panel has one.
func TestDashboardQueries(t *testing.T) {
	b, err := os.ReadFile("grafana/lbctl-site.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/lbctl-site.json: %v", err)
	}
	have := exported()
	used := map[string]bool{}
	check := func(where, expr string) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: %q names no metric", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !slices.Contains(have, n) {
				t.Errorf("%s: %q uses %s, which the agent does not export", where, expr, n)
			}
		}
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			used[m[1]] = true
			if !slices.Contains(have, m[1]) {
				t.Errorf("variable %s: %s is not exported", v.Name, m[1])
			}
		}
	}
	for _, a := range d.Annotations.List {
		check("annotation", a.Expr)
	}
	for _, want := range []string{"lbctl_bundle_serial", "lbctl_vip_announced", "lbctl_vip_health_transitions_total",
		"lbctl_haproxy_frontend_http_requests_total", "lbctl_haproxy_server_state"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}
