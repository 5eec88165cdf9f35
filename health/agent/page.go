package agent

import (
	"context"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/traffic"
	"github.com/lbctl/lbctl/nodeapi"
)

// Page is the node's read-only status page, served next to /metrics: every
// VIP with health, announcement, drain, backend servers up and down,
// sessions and request rate, and the last install. Plain HTML that
// refreshes itself; no script, nothing loaded from elsewhere.
type Page struct {
	Agent *Agent
	// Node is the node's name.
	Node    string
	Traffic *traffic.Reader
	// LastInstall returns the last entry of the install log (nil if none).
	LastInstall func() *nodeapi.LogEntry
	// Serial returns the committed release (default: the agent's).
	Serial func() uint64
	// ServersOut returns one line per server an operator took out.
	ServersOut func() []string
	// Refresh is the page's reload interval. Default 5s.
	Refresh time.Duration
}

// PageServer is one backend server on the page.
type PageServer struct {
	Name, State, Check string
	Up                 bool
	Sessions           int64
}

// PageBackend is one backend on the page.
type PageBackend struct {
	Name, Service string
	Up, Total     int
	Servers       []PageServer
}

// PageVIP is one VIP on the page.
type PageVIP struct {
	VIPStatus
	// Traffic is false when the VIP's HAProxy did not answer (TrafficErr).
	Traffic    bool
	TrafficErr string
	Sessions   int64
	ReqRate    int64
	SessRate   int64
	StartTime  time.Time
	Backends   []PageBackend
}

// PageData is what the template shows.
type PageData struct {
	Node, Probe string
	Serial      uint64
	Now         time.Time
	Refresh     int
	Last        *nodeapi.LogEntry
	VIPs        []PageVIP
	ServersOut  []string
	Announced   []string
}

// VIPs returns the VIPs the agent watches (the announceable set).
func (a *Agent) VIPs() []health.VIP {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]health.VIP, 0, len(a.order))
	for _, s := range a.order {
		out = append(out, s.vip)
	}
	return out
}

// Data collects what the page shows.
func (p *Page) Data(ctx context.Context) PageData {
	st := p.Agent.Status()
	refresh := p.Refresh
	if refresh <= 0 {
		refresh = 5 * time.Second
	}
	d := PageData{Node: p.Node, Probe: st.Probe, Serial: st.Serial, Now: time.Now().UTC(), Refresh: int(refresh.Seconds()), Announced: st.Announced}
	if p.LastInstall != nil {
		d.Last = p.LastInstall()
	}
	if p.Serial != nil {
		d.Serial = p.Serial()
	}
	if p.ServersOut != nil {
		d.ServersOut = p.ServersOut()
	}
	snaps := map[string]*traffic.Snapshot{}
	if p.Traffic != nil {
		all := p.Traffic.Read(ctx)
		for i := range all {
			snaps[all[i].VIP] = &all[i]
		}
	}
	for _, v := range st.VIPs {
		pv := PageVIP{VIPStatus: v}
		if s := snaps[v.Name]; s != nil {
			fillTraffic(&pv, s)
		} else {
			pv.TrafficErr = "no traffic data"
		}
		d.VIPs = append(d.VIPs, pv)
	}
	return d
}

func fillTraffic(pv *PageVIP, s *traffic.Snapshot) {
	if s.Err != nil {
		pv.TrafficErr = s.Err.Error()
		return
	}
	pv.Traffic = true
	if s.Info.StartTime > 0 {
		pv.StartTime = time.Unix(s.Info.StartTime, 0).UTC()
	}
	byName := map[string]*PageBackend{}
	var order []string
	for i := range s.Rows {
		r := &s.Rows[i]
		switch r.Kind {
		case traffic.Frontend:
			pv.Sessions += max(r.CurSessions, 0)
			pv.ReqRate += max(r.ReqRate, 0)
			pv.SessRate += max(r.SessRate, 0)
		case traffic.Server:
			b := byName[r.Proxy]
			if b == nil {
				b = &PageBackend{Name: r.Proxy, Service: s.Service(r.Proxy)}
				byName[r.Proxy] = b
				order = append(order, r.Proxy)
			}
			up := r.Up()
			b.Total++
			if up {
				b.Up++
			}
			b.Servers = append(b.Servers, PageServer{Name: r.Name, State: traffic.State(r.Status), Check: strings.TrimLeft(r.CheckStatus, "* "), Up: up, Sessions: max(r.CurSessions, 0)})
		}
	}
	sort.Strings(order)
	for _, n := range order {
		pv.Backends = append(pv.Backends, *byName[n])
	}
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"yes": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"join": strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>lbctl {{.Node}}</title>
<style>
body { font-family: sans-serif; margin: 1em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #eee; }
.ok { background: #d9f2d9; } .bad { background: #f8d0d0; } .warn { background: #fcefc7; }
.srv { display: inline-block; margin: 0 0.4em 0.2em 0; padding: 0 0.3em; border-radius: 3px; }
small { color: #555; }
</style>
</head>
<body>
<h1>lbctl node {{.Node}}</h1>
<p>Release <b id="serial">{{.Serial}}</b>; socket probe: {{.Probe}}; page generated {{ts .Now}}, refreshes every {{.Refresh}} s.</p>
{{with .Last}}<p id="last-install">Last install: {{.Op}} {{.From}} &rarr; {{.To}} <b>{{.Result}}</b> at {{ts .Time}}{{with .Error}} ({{.}}){{end}}</p>{{else}}<p id="last-install">No install yet.</p>{{end}}
{{if .ServersOut}}<h2>Servers out of service</h2><ul id="servers-out">{{range .ServersOut}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>VIPs ({{len .VIPs}})</h2>
<table id="vips">
<tr><th>VIP</th><th>Addresses</th><th>Healthy</th><th>Announced</th><th>Drained</th><th>Backends (servers up / all)</th><th>Sessions</th><th>Requests/s</th><th>Sessions/s</th><th>HAProxy started</th></tr>
{{range .VIPs}}<tr class="vip" data-vip="{{.Name}}">
<td><b>{{.Name}}</b>{{range .Reasons}}<br><small>{{.}}</small>{{end}}</td>
<td>{{join .Addresses " "}}</td>
<td class="{{if .Healthy}}ok{{else}}bad{{end}}">{{yes .Healthy}}</td>
<td class="{{if .Announced}}ok{{else}}warn{{end}}">{{yes .Announced}}</td>
<td class="{{if .Drained}}warn{{end}}">{{yes .Drained}}</td>
<td>{{if .Traffic}}{{range .Backends}}<div><b>{{.Name}}</b> <span class="{{if eq .Up .Total}}ok{{else if eq .Up 0}}bad{{else}}warn{{end}}">{{.Up}}/{{.Total}}</span>
{{range .Servers}}<span class="srv {{if .Up}}ok{{else if or (eq .State "DRAIN") (eq .State "MAINT")}}warn{{else}}bad{{end}}" title="check {{.Check}}">{{.Name}} {{.State}}{{if .Sessions}} ({{.Sessions}}){{end}}</span>{{end}}</div>{{end}}{{else}}<span class="bad">{{.TrafficErr}}</span>{{end}}</td>
<td>{{if .Traffic}}{{.Sessions}}{{end}}</td>
<td>{{if .Traffic}}{{.ReqRate}}{{end}}</td>
<td>{{if .Traffic}}{{.SessRate}}{{end}}</td>
<td>{{if .Traffic}}{{ts .StartTime}}{{end}}</td>
</tr>
{{end}}</table>
<p>Announced: {{join .Announced " "}}</p>
<p><small>Read-only. Metrics: <a href="/metrics">/metrics</a>.</small></p>
</body>
</html>
`))

// ServeHTTP implements http.Handler.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if err := pageTemplate.Execute(w, p.Data(ctx)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// AllowFrom serves only clients on loopback or in one of allow; others get
// 403.
func AllowFrom(allow []netip.Prefix, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		a, perr := netip.ParseAddr(host)
		if err != nil || perr != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		a = a.Unmap()
		ok := a.IsLoopback()
		for _, p := range allow {
			ok = ok || p.Contains(a)
		}
		if !ok {
			http.Error(w, "forbidden: "+a.String()+" is not in agent.status_allow", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
