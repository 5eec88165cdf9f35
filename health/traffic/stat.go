package traffic

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/lbctl/lbctl/health/haproxy"
)

// Kind of a "show stat" row.
type Kind int

// Row kinds.
const (
	Frontend Kind = iota
	Backend
	Server
)

// Row is one line of "show stat": a frontend, a backend summary or a
// server, with the columns the metrics and the status page use. A counter
// HAProxy leaves empty for this kind of row (a frontend has no retries) is
// -1 and exported as no series.
type Row struct {
	Kind Kind
	// Proxy is pxname (the frontend or backend), Name svname (the server,
	// or FRONTEND/BACKEND).
	Proxy, Name string
	// Status is HAProxy's status column (OPEN, UP, DOWN, DRAIN, MAINT,
	// "UP 1/3", "no check", ...); CheckStatus the last check's result
	// (L4OK, L7OK, L4CON, "* L7OK" while a check runs).
	Status, CheckStatus string

	CurSessions, Sessions  int64 // scur, stot
	QueueCur               int64 // qcur
	BytesIn, BytesOut      int64 // bin, bout
	DeniedReq, ReqErrors   int64 // dreq, ereq
	ConnErrors, RespErrors int64 // econ, eresp
	Retries, Redispatches  int64 // wretr, wredis
	Weight, Active         int64 // weight, act
	CheckFails, CheckDowns int64 // chkfail, chkdown
	SessRate, ReqRate      int64 // rate, req_rate
	Requests               int64 // req_tot
	Responses              [6]int64
	TLSSessions, TLSFailed int64 // ssl_sess, ssl_failed_handshake
	LastChange             int64 // lastchg, seconds
}

// ResponseClasses names Responses' entries, the status classes of
// hrsp_1xx..hrsp_5xx and hrsp_other.
var ResponseClasses = [6]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

// Info is what the agent takes from "show info".
type Info struct {
	// StartTime is Start_time_sec: when the current worker started, that
	// is the last reload or restart (master-worker starts a new worker on
	// every reload).
	StartTime int64
	CurrConns int64
	CumConns  int64
	CumReq    int64
	// CumSslConns counts TLS connections (frontend and backend) since the
	// worker started.
	CumSslConns int64
}

// Parse splits the answer to "show info;show stat" into its two parts.
func Parse(out []byte) (Info, []Row, error) {
	i := bytes.Index(out, []byte("# pxname,"))
	if i < 0 {
		return Info{}, nil, errors.New("no show stat header in the answer")
	}
	info := parseInfo(out[:i])
	rows, err := parseStat(out[i:])
	return info, rows, err
}

func parseInfo(b []byte) Info {
	var in Info
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "Start_time_sec":
			in.StartTime = n
		case "CurrConns":
			in.CurrConns = n
		case "CumConns":
			in.CumConns = n
		case "CumReq":
			in.CumReq = n
		case "CumSslConns":
			in.CumSslConns = n
		}
	}
	return in
}

// columns maps a "show stat" header to the Row field it fills.
var columns = map[string]func(*Row) *int64{
	"scur": func(r *Row) *int64 { return &r.CurSessions }, "stot": func(r *Row) *int64 { return &r.Sessions },
	"qcur": func(r *Row) *int64 { return &r.QueueCur },
	"bin":  func(r *Row) *int64 { return &r.BytesIn }, "bout": func(r *Row) *int64 { return &r.BytesOut },
	"dreq": func(r *Row) *int64 { return &r.DeniedReq }, "ereq": func(r *Row) *int64 { return &r.ReqErrors },
	"econ": func(r *Row) *int64 { return &r.ConnErrors }, "eresp": func(r *Row) *int64 { return &r.RespErrors },
	"wretr": func(r *Row) *int64 { return &r.Retries }, "wredis": func(r *Row) *int64 { return &r.Redispatches },
	"weight": func(r *Row) *int64 { return &r.Weight }, "act": func(r *Row) *int64 { return &r.Active },
	"chkfail": func(r *Row) *int64 { return &r.CheckFails }, "chkdown": func(r *Row) *int64 { return &r.CheckDowns },
	"rate": func(r *Row) *int64 { return &r.SessRate }, "req_rate": func(r *Row) *int64 { return &r.ReqRate },
	"req_tot":              func(r *Row) *int64 { return &r.Requests },
	"hrsp_1xx":             func(r *Row) *int64 { return &r.Responses[0] },
	"hrsp_2xx":             func(r *Row) *int64 { return &r.Responses[1] },
	"hrsp_3xx":             func(r *Row) *int64 { return &r.Responses[2] },
	"hrsp_4xx":             func(r *Row) *int64 { return &r.Responses[3] },
	"hrsp_5xx":             func(r *Row) *int64 { return &r.Responses[4] },
	"hrsp_other":           func(r *Row) *int64 { return &r.Responses[5] },
	"ssl_sess":             func(r *Row) *int64 { return &r.TLSSessions },
	"ssl_failed_handshake": func(r *Row) *int64 { return &r.TLSFailed },
	"lastchg":              func(r *Row) *int64 { return &r.LastChange },
}

func parseStat(b []byte) ([]Row, error) {
	b = bytes.TrimPrefix(b, []byte("# "))
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("parse show stat: %w", err)
	}
	type col struct {
		i int
		f func(*Row) *int64
	}
	var cols []col
	px, sv, st, ck := haproxy.StatColumns(head)
	for i, h := range head {
		if f, ok := columns[h]; ok {
			cols = append(cols, col{i, f})
		}
	}
	if px < 0 || sv < 0 || st < 0 {
		return nil, fmt.Errorf("parse show stat: no pxname, svname or status column in %q", strings.Join(head, ","))
	}
	var rows []Row
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse show stat: %w", err)
		}
		if len(rec) <= st || len(rec) <= sv {
			continue
		}
		row := Row{Proxy: rec[px], Name: rec[sv], Status: rec[st]}
		switch row.Name {
		case "FRONTEND":
			row.Kind = Frontend
		case "BACKEND":
			row.Kind = Backend
		default:
			row.Kind = Server
		}
		if ck >= 0 && ck < len(rec) {
			row.CheckStatus = rec[ck]
		}
		for _, c := range cols {
			p := c.f(&row)
			*p = -1
			if c.i < len(rec) && rec[c.i] != "" {
				if n, err := strconv.ParseInt(rec[c.i], 10, 64); err == nil {
					*p = n
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// State is a server's state without HAProxy's transition detail: "UP 1/3"
// (going down) is UP, "DOWN 1/2" (coming up) DOWN, "MAINT (via x)" MAINT,
// "no check" NOCHECK.
func State(status string) string {
	s := strings.TrimSpace(status)
	if s == "no check" {
		return "NOCHECK"
	}
	if i := strings.IndexAny(s, " ("); i > 0 {
		s = s[:i]
	}
	return s
}

// States are the values State returns for a server, in the order the
// server_state metric lists them.
var States = []string{"UP", "DOWN", "NOLB", "DRAIN", "MAINT", "NOCHECK"}

// Up reports whether a server takes traffic and, when checked, a check
// vouched for it (the same rule as the health gate's, health/haproxy).
func (r *Row) Up() bool {
	if strings.TrimSpace(strings.TrimPrefix(r.CheckStatus, "*")) == "INI" {
		return false
	}
	st := State(r.Status)
	return st == "UP" || st == "NOCHECK" || st == "NOLB"
}
