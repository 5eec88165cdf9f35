package bird

import (
	"fmt"
	"strings"
)

// Protocol is one line of "show protocols".
type Protocol struct {
	Name  string // e.g. "rr1"
	Proto string // protocol type: "BGP", "Static", "BFD", "Device", ...
	Table string // main table, "---" when the protocol has none or several
	State string // "up", "start", "stop", "down", "flush"
	Since string // as BIRD formats it ("16:26:31.086", "2026-11-24", ...)
	Info  string // e.g. "Established", "Active        Socket: Connection refused"
}

// Up reports whether the protocol is in state up.
func (p Protocol) Up() bool { return p.State == "up" }

// Established reports whether p is a BGP session in state Established.
func (p Protocol) Established() bool {
	return p.Proto == "BGP" && p.State == "up" && strings.HasPrefix(p.Info, "Established")
}

// parseProtocols reads the 1002 lines of a "show protocols" reply. The
// heading (2002) and the details of "show protocols all" (1006) are skipped.
func parseProtocols(r *Reply) ([]Protocol, error) {
	var out []Protocol
	for _, l := range r.Lines {
		if l.Code != CodeProtocolList {
			continue
		}
		p, ok := parseProtocolLine(l.Text)
		if !ok {
			return nil, fmt.Errorf("%w: protocol line %q", ErrProtocol, l.Text)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseProtocolLine splits "name proto table state since info...". Since is
// one field with BIRD's default time formats, two ("2026-11-24 16:26:31") with
// "iso long"; Info keeps its inner spacing.
func parseProtocolLine(s string) (Protocol, bool) {
	rest := s
	var f [5]string
	for i := range 4 {
		f[i], rest = nextField(rest)
	}
	f[4], rest = nextField(rest)
	if f[4] == "" {
		return Protocol{}, false
	}
	if isDate(f[4]) {
		if t, r := nextField(rest); strings.Contains(t, ":") {
			f[4] += " " + t
			rest = r
		}
	}
	return Protocol{Name: f[0], Proto: f[1], Table: f[2], State: f[3], Since: f[4], Info: strings.TrimSpace(rest)}, true
}

func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// isDate matches YYYY-MM-DD.
func isDate(s string) bool {
	return len(s) == 10 && s[4] == '-' && s[7] == '-' && isDigits(s[:4]) && isDigits(s[5:7]) && isDigits(s[8:])
}
