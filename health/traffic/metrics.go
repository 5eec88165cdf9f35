package traffic

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// The traffic metrics are written in Prometheus' text format directly
// rather than through client_golang's registry: at 150 VIPs a scrape has
// some 25,000 series, and building, checking and sorting them as protobuf
// messages cost ten times the CPU of reading the sockets
// (docs/BENCHMARKS.md). Series are written family by family, VIPs in
// Targets order, rows in "show stat" order.

// family is one metric family of a kind of row.
type family struct {
	name, help, typ string
	kind            Kind
	value           func(*Row) int64
	// httpOnly families have no series for TCP-mode rows.
	httpOnly bool
}

func counter(kind Kind, name, help string, v func(*Row) int64) family {
	return family{name: "lbctl_haproxy_" + name, help: help, typ: "counter", kind: kind, value: v}
}

func gauge(kind Kind, name, help string, v func(*Row) int64) family {
	return family{name: "lbctl_haproxy_" + name, help: help, typ: "gauge", kind: kind, value: v}
}

var kindNames = [...]string{Frontend: "frontend", Backend: "backend", Server: "server"}

func commonFamilies(k Kind) []family {
	n := kindNames[k]
	return []family{
		gauge(k, n+"_current_sessions", "Sessions open now.", func(r *Row) int64 { return r.CurSessions }),
		counter(k, n+"_sessions_total", "Sessions since the HAProxy worker started.", func(r *Row) int64 { return r.Sessions }),
		counter(k, n+"_received_bytes_total", "Bytes received (HAProxy's bin).", func(r *Row) int64 { return r.BytesIn }),
		counter(k, n+"_sent_bytes_total", "Bytes sent (HAProxy's bout).", func(r *Row) int64 { return r.BytesOut }),
	}
}

var families = func() []family {
	var fs []family
	fs = append(fs, commonFamilies(Frontend)...)
	fs = append(fs,
		family{name: "lbctl_haproxy_frontend_http_requests_total", help: "HTTP requests received.", typ: "counter", kind: Frontend,
			value: func(r *Row) int64 { return r.Requests }, httpOnly: true},
		counter(Frontend, "frontend_request_errors_total", "Requests that failed to parse or were cut (HAProxy's ereq).", func(r *Row) int64 { return r.ReqErrors }),
		counter(Frontend, "frontend_denied_requests_total", "Requests denied by an ACL, such as a source allow-list (HAProxy's dreq).", func(r *Row) int64 { return r.DeniedReq }),
		counter(Frontend, "frontend_tls_handshakes_total", "TLS sessions established (ssl_sess); only frontends with TLS.", func(r *Row) int64 { return r.TLSSessions }),
		counter(Frontend, "frontend_tls_handshake_failures_total", "Failed TLS handshakes (ssl_failed_handshake); only frontends with TLS.", func(r *Row) int64 { return r.TLSFailed }),
	)
	fs = append(fs, commonFamilies(Backend)...)
	fs = append(fs,
		counter(Backend, "backend_connection_errors_total", "Failed connections to a server (HAProxy's econ).", func(r *Row) int64 { return r.ConnErrors }),
		counter(Backend, "backend_response_errors_total", "Responses aborted or invalid (HAProxy's eresp).", func(r *Row) int64 { return r.RespErrors }),
		counter(Backend, "backend_retries_total", "Connection retries (HAProxy's wretr).", func(r *Row) int64 { return r.Retries }),
		counter(Backend, "backend_redispatches_total", "Requests sent to another server after a failure (HAProxy's wredis).", func(r *Row) int64 { return r.Redispatches }),
		gauge(Backend, "backend_current_queue", "Requests waiting for a server.", func(r *Row) int64 { return r.QueueCur }),
		gauge(Backend, "backend_active_servers", "Servers taking traffic (HAProxy's act).", func(r *Row) int64 { return r.Active }),
		gauge(Backend, "backend_up", "1 if the backend has a server taking traffic.", func(r *Row) int64 { return b2i(State(r.Status) == "UP") }),
	)
	fs = append(fs, commonFamilies(Server)...)
	fs = append(fs,
		counter(Server, "server_connection_errors_total", "Failed connections to the server.", func(r *Row) int64 { return r.ConnErrors }),
		counter(Server, "server_response_errors_total", "Responses from the server aborted or invalid.", func(r *Row) int64 { return r.RespErrors }),
		counter(Server, "server_retries_total", "Connection retries to the server.", func(r *Row) int64 { return r.Retries }),
		gauge(Server, "server_current_queue", "Requests waiting for this server.", func(r *Row) int64 { return r.QueueCur }),
		gauge(Server, "server_weight", "The server's effective weight.", func(r *Row) int64 { return r.Weight }),
		counter(Server, "server_check_failures_total", "Failed health checks of the server.", func(r *Row) int64 { return r.CheckFails }),
		counter(Server, "server_check_downs_total", "Transitions of the server to DOWN by its checks.", func(r *Row) int64 { return r.CheckDowns }),
	)
	return fs
}()

// Families with an extra label.
const (
	responsesHelp = "HTTP responses by status class (code: 1xx..5xx, other)."
	stateName     = "lbctl_haproxy_server_state"
	stateHelp     = "1 for the server's current state (UP, DOWN, NOLB, DRAIN, MAINT, NOCHECK), 0 for the others."
	checkName     = "lbctl_haproxy_server_check_status"
	checkHelp     = "1, with the result of the server's last health check (L4OK, L7OK, L4CON, L7STS, ...) as label check."
)

// Per-VIP families from "show info" and the read itself.
var vipFamilies = []struct {
	name, help, typ string
	value           func(*Snapshot) (float64, bool)
}{
	{"lbctl_haproxy_up", "1 if the VIP's HAProxy answered on its admin socket.", "gauge",
		func(s *Snapshot) (float64, bool) { return float64(b2i(s.Err == nil)), true }},
	{"lbctl_haproxy_scrape_duration_seconds", "Time the last read of the VIP's admin socket took.", "gauge",
		func(s *Snapshot) (float64, bool) { return s.Duration.Seconds(), true }},
	{"lbctl_haproxy_process_start_time_seconds", "Unix time the VIP's HAProxy worker started: its last reload or restart.", "gauge",
		func(s *Snapshot) (float64, bool) {
			return float64(s.Info.StartTime), s.Err == nil && s.Info.StartTime > 0
		}},
	{"lbctl_haproxy_current_connections", "Connections open in the VIP's HAProxy.", "gauge",
		func(s *Snapshot) (float64, bool) { return float64(s.Info.CurrConns), s.Err == nil }},
	{"lbctl_haproxy_connections_total", "Connections accepted since the worker started.", "counter",
		func(s *Snapshot) (float64, bool) { return float64(s.Info.CumConns), s.Err == nil }},
	{"lbctl_haproxy_tls_connections_total", "TLS connections (frontend and backend) since the worker started.", "counter",
		func(s *Snapshot) (float64, bool) { return float64(s.Info.CumSslConns), s.Err == nil }},
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Names lists every metric name WriteText can write.
func Names() []string {
	var out []string
	for _, f := range vipFamilies {
		out = append(out, f.name)
	}
	for _, f := range families {
		out = append(out, f.name)
	}
	for _, k := range []Kind{Frontend, Backend, Server} {
		out = append(out, "lbctl_haproxy_"+kindNames[k]+"_http_responses_total")
	}
	return append(out, stateName, checkName)
}

// labelWriter escapes label values (backslash, double quote, newline).
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// rowLabels returns the label set of every row of s, without braces.
func rowLabels(s *Snapshot) []string {
	vip := `vip="` + labelEscaper.Replace(s.VIP) + `"`
	out := make([]string, len(s.Rows))
	for i := range s.Rows {
		r := &s.Rows[i]
		px := labelEscaper.Replace(r.Proxy)
		switch r.Kind {
		case Frontend:
			out[i] = vip + `,frontend="` + px + `"`
		case Backend:
			out[i] = vip + `,service="` + labelEscaper.Replace(s.Service(r.Proxy)) + `",backend="` + px + `"`
		case Server:
			out[i] = vip + `,service="` + labelEscaper.Replace(s.Service(r.Proxy)) + `",backend="` + px + `",server="` + labelEscaper.Replace(r.Name) + `"`
		}
	}
	return out
}

func header(w *bufio.Writer, name, help, typ string) {
	w.WriteString("# HELP ")
	w.WriteString(name)
	w.WriteByte(' ')
	w.WriteString(help)
	w.WriteString("\n# TYPE ")
	w.WriteString(name)
	w.WriteByte(' ')
	w.WriteString(typ)
	w.WriteByte('\n')
}

func sample(w *bufio.Writer, buf []byte, name, labels, extra string, v int64) []byte {
	w.WriteString(name)
	w.WriteByte('{')
	w.WriteString(labels)
	w.WriteString(extra)
	w.WriteString("} ")
	buf = strconv.AppendInt(buf[:0], v, 10)
	w.Write(buf)
	w.WriteByte('\n')
	return buf
}

// WriteText writes the snapshots' metrics in Prometheus' text format.
func WriteText(out io.Writer, snaps []Snapshot) error {
	w := bufio.NewWriterSize(out, 64<<10)
	labels := make([][]string, len(snaps))
	for i := range snaps {
		labels[i] = rowLabels(&snaps[i])
	}
	var buf []byte
	for _, f := range vipFamilies {
		header(w, f.name, f.help, f.typ)
		for i := range snaps {
			s := &snaps[i]
			if v, ok := f.value(s); ok {
				w.WriteString(f.name)
				w.WriteString(`{vip="`)
				w.WriteString(labelEscaper.Replace(s.VIP))
				w.WriteString(`"} `)
				buf = strconv.AppendFloat(buf[:0], v, 'g', -1, 64)
				w.Write(buf)
				w.WriteByte('\n')
			}
		}
	}
	for _, f := range families {
		header(w, f.name, f.help, f.typ)
		for i := range snaps {
			for j := range snaps[i].Rows {
				r := &snaps[i].Rows[j]
				if r.Kind != f.kind || (f.httpOnly && r.Responses[1] < 0) {
					continue
				}
				if v := f.value(r); v >= 0 {
					buf = sample(w, buf, f.name, labels[i][j], "", v)
				}
			}
		}
	}
	for _, k := range []Kind{Frontend, Backend, Server} {
		name := "lbctl_haproxy_" + kindNames[k] + "_http_responses_total"
		header(w, name, responsesHelp, "counter")
		for i := range snaps {
			for j := range snaps[i].Rows {
				r := &snaps[i].Rows[j]
				if r.Kind != k {
					continue
				}
				for c, class := range ResponseClasses {
					if v := r.Responses[c]; v >= 0 {
						buf = sample(w, buf, name, labels[i][j], `,code="`+class+`"`, v)
					}
				}
			}
		}
	}
	header(w, stateName, stateHelp, "gauge")
	for i := range snaps {
		for j := range snaps[i].Rows {
			r := &snaps[i].Rows[j]
			if r.Kind != Server {
				continue
			}
			st := State(r.Status)
			for _, state := range States {
				buf = sample(w, buf, stateName, labels[i][j], `,state="`+state+`"`, b2i(st == state))
			}
		}
	}
	header(w, checkName, checkHelp, "gauge")
	for i := range snaps {
		for j := range snaps[i].Rows {
			r := &snaps[i].Rows[j]
			if chk := checkStatus(r.CheckStatus); r.Kind == Server && chk != "" {
				buf = sample(w, buf, checkName, labels[i][j], `,check="`+labelEscaper.Replace(chk)+`"`, 1)
			}
		}
	}
	return w.Flush()
}

// checkStatus drops the "* " HAProxy puts before a check under way.
func checkStatus(s string) string {
	return strings.TrimLeft(s, "* ")
}

// Handler serves /metrics: the registry's metrics, then the traffic
// metrics of every VIP, in the text format (whatever the scraper asks for:
// every Prometheus reads it).
func Handler(g prometheus.Gatherer, r *Reader, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mfs, gerr := g.Gather()
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		snaps := r.Read(ctx)
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return
			}
		}
		if gerr != nil {
			// What could be gathered was written; say what failed as a
			// comment rather than failing the whole scrape.
			io.WriteString(w, "# gather error: "+strings.ReplaceAll(gerr.Error(), "\n", " ")+"\n")
		}
		_ = WriteText(w, snaps)
	})
}
