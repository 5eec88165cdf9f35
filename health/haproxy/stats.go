// Package haproxy reads a VIP's HAProxy runtime state through its stats
// (admin) socket: which backend servers are up. It speaks the runtime API
// directly over the unix socket; no socat, no haproxyctl. It also receives
// HAProxy's server and backend state changes from its logs (Events), and
// tells whether the HAProxy behind a socket is stopped (Workers, Stat).
// It never decides health.
package haproxy

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Server is one backend server as HAProxy sees it.
type Server struct {
	Backend string
	Name    string
	// Status is HAProxy's status column: UP, DOWN, MAINT, "UP 1/2", no check...
	Status string
	// CheckStatus is the check_status column: L4OK, L7OK, L4TOUT, ...;
	// "INI" until the first check completed ("* " marks a check under way).
	CheckStatus string
}

// Up reports whether HAProxy sends traffic to the server and, when it is
// checked, a check has vouched for it: HAProxy starts checked servers UP
// before their first check ran (check_status INI), which would let a VIP
// whose backends do not exist pass the install's health gate.
func (s Server) Up() bool {
	if strings.TrimSpace(strings.TrimPrefix(s.CheckStatus, "*")) == "INI" {
		return false
	}
	return strings.HasPrefix(s.Status, "UP") || s.Status == "no check" || strings.HasPrefix(s.Status, "NOLB")
}

// Starting reports whether the server waits for its first check: HAProxy
// shows it UP with check_status INI right after a start or a reload. It is
// neither up (Up) nor known to be down.
func (s Server) Starting() bool {
	return strings.TrimSpace(strings.TrimPrefix(s.CheckStatus, "*")) == "INI" &&
		(strings.HasPrefix(s.Status, "UP") || strings.HasPrefix(s.Status, "NOLB"))
}

// Stats runs "show stat" on the socket and returns the servers of every
// backend (the FRONTEND and BACKEND summary rows are left out). It asks for
// server rows only ("-1 4 -1": every proxy, type server, every server id).
func Stats(ctx context.Context, socket string) ([]Server, error) {
	servers, _, err := StatsFrom(ctx, socket)
	return servers, err
}

// StatsFrom is Stats that also returns the process listening on the socket
// (SO_PEERCRED; 0 when unknown): HAProxy's master in master-worker mode.
func StatsFrom(ctx context.Context, socket string) ([]Server, int, error) {
	out, pid, err := command(ctx, socket, "show stat -1 4 -1")
	if err != nil {
		return nil, 0, err
	}
	servers, err := parseStat(out)
	return servers, pid, err
}

// UpCount returns the number of servers up per backend.
func UpCount(servers []Server) map[string]int {
	m := map[string]int{}
	for _, s := range servers {
		if _, ok := m[s.Backend]; !ok {
			m[s.Backend] = 0
		}
		if s.Up() {
			m[s.Backend]++
		}
	}
	return m
}

// StartingCount returns the number of servers per backend that wait for
// their first check (Starting).
func StartingCount(servers []Server) map[string]int {
	m := map[string]int{}
	for _, s := range servers {
		if s.Starting() {
			m[s.Backend]++
		}
	}
	return m
}

// Command sends one runtime API command and returns the answer.
func Command(ctx context.Context, socket, cmd string) (string, error) {
	out, _, err := command(ctx, socket, cmd)
	return out, err
}

// command is Command that also returns the PID that listens on the socket
// (0 when unknown).
func command(ctx context.Context, socket, cmd string) (string, int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", 0, fmt.Errorf("haproxy socket %s: %w", socket, err)
	}
	defer c.Close()
	pid := peerPID(c)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	_ = c.SetDeadline(deadline)
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", 0, fmt.Errorf("haproxy socket %s: %w", socket, err)
	}
	// One buffer large enough for a VIP's whole answer in a read or two
	// (io.ReadAll read show stat 256 bytes at a time: 20 system calls).
	var b strings.Builder
	b.Grow(16 << 10)
	if _, err := io.Copy(&b, io.LimitReader(c, 16<<20)); err != nil {
		return "", 0, fmt.Errorf("haproxy socket %s: %s: %w", socket, cmd, err)
	}
	return b.String(), pid, nil
}

// parseStat reads "show stat" CSV. HAProxy quotes a field only when it
// holds a comma, a quote or a line break (free text such as last_chk);
// without a quote in the answer every line splits on commas, which costs
// no per-field string as encoding/csv does (this runs once per VIP and
// evaluation).
func parseStat(out string) ([]Server, error) {
	out = strings.TrimPrefix(out, "# ")
	if strings.IndexByte(out, '"') >= 0 {
		return parseStatCSV(out)
	}
	header, rows, _ := strings.Cut(out, "\n")
	px, sv, st, ck := StatColumns(strings.Split(header, ","))
	if strings.TrimSpace(header) == "" {
		return nil, fmt.Errorf("parse show stat: empty answer")
	}
	if st < 0 || px < 0 || sv < 0 {
		return nil, fmt.Errorf("parse show stat: no status column in %q", header)
	}
	need := max(px, sv, st, ck) + 1
	var servers []Server
	var f []string
	for line := range strings.Lines(rows) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		f = f[:0]
		for i, rest := 0, line; i < need; i++ {
			field, more, ok := strings.Cut(rest, ",")
			f = append(f, field)
			if !ok {
				break
			}
			rest = more
		}
		if len(f) <= st || len(f) <= px || len(f) <= sv || f[sv] == "FRONTEND" || f[sv] == "BACKEND" {
			continue
		}
		srv := Server{Backend: f[px], Name: f[sv], Status: f[st]}
		if ck >= 0 && ck < len(f) {
			srv.CheckStatus = f[ck]
		}
		servers = append(servers, srv)
	}
	return servers, nil
}

// StatColumns finds, in the header of HAProxy's show stat, the columns that
// name a server and its state: proxy, server, status and check status (-1
// for a column the header lacks).
func StatColumns(header []string) (px, sv, st, ck int) {
	px, sv, st, ck = -1, -1, -1, -1
	for i, h := range header {
		switch h {
		case "pxname":
			px = i
		case "svname":
			sv = i
		case "status":
			st = i
		case "check_status":
			ck = i
		}
	}
	return px, sv, st, ck
}

// parseStatCSV is parseStat through encoding/csv, for answers with quoted
// fields.
func parseStatCSV(out string) ([]Server, error) {
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse show stat: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("parse show stat: empty answer")
	}
	px, sv, st, ck := StatColumns(recs[0])
	if st < 0 || px < 0 || sv < 0 {
		return nil, fmt.Errorf("parse show stat: no status column in %q", strings.Join(recs[0], ","))
	}
	var servers []Server
	for _, rec := range recs[1:] {
		if len(rec) <= max(st, px, sv) || rec[sv] == "FRONTEND" || rec[sv] == "BACKEND" {
			continue
		}
		srv := Server{Backend: rec[px], Name: rec[sv], Status: rec[st]}
		if ck >= 0 && ck < len(rec) {
			srv.CheckStatus = rec[ck]
		}
		servers = append(servers, srv)
	}
	return servers, nil
}
