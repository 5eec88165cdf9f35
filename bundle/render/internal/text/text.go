// Package text holds small helpers shared by the renderers: an indenting
// line writer that refuses a value able to start a new line, quoting of
// values by HAProxy's and BIRD's rules, HAProxy-style durations and name
// sanitising. It is pure: no file system, clock or network.
package text

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Writer accumulates lines of a configuration file. A line whose text
// holds a control character (a line feed, carriage return, NUL, ...) is
// not written: Err reports it, so no value can add a line, a section or a
// keyword to the file.
type Writer struct {
	b      strings.Builder
	indent string
	depth  int
	errs   []error
}

// Err reports the lines refused, joined; nil when there were none.
func (w *Writer) Err() error { return errors.Join(w.errs...) }

// NewWriter returns a Writer that indents nested lines with indent.
func NewWriter(indent string) *Writer { return &Writer{indent: indent} }

// Line writes one line at the current depth; an empty format writes an empty
// line without indentation.
func (w *Writer) Line(format string, a ...any) {
	if format == "" {
		w.b.WriteByte('\n')
		return
	}
	line := fmt.Sprintf(format, a...)
	if i := strings.IndexFunc(line, isControl); i >= 0 {
		w.errs = append(w.errs, fmt.Errorf("line %q: control character U+%04X", line, runeAt(line, i)))
		return
	}
	for i := 0; i < w.depth; i++ {
		w.b.WriteString(w.indent)
	}
	w.b.WriteString(line)
	w.b.WriteByte('\n')
}

func runeAt(s string, i int) rune {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r
}

// isControl reports C0 controls, DEL and C1 controls (tabs included: the
// writer indents, values never carry them).
func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// haproxyBare are the bytes HAProxy's configuration parser reads as part of
// an unquoted word with no special meaning: not blanks, quotes, a backslash,
// '#', '$' or braces (HAProxy 2.6 configuration manual, 2.2 "Quoting and
// escaping" and 2.3 "Environment variables").
var haproxyBare = func() (t [128]bool) {
	for c := byte('!'); c < 0x7f; c++ {
		t[c] = !strings.ContainsRune("\"'\\#${}", rune(c))
	}
	return t
}()

// HAProxyWord returns s as one word of a HAProxy configuration line: as it
// is when every byte is a bare word byte, else in single quotes (strong
// quoting: nothing is interpreted inside, not even '$' or a backslash),
// where a single quote is written as quote, backslash, quote, quote
// (close, escaped quote, reopen). A control character cannot be written
// in any form and is refused.
func HAProxyWord(s string) (string, error) {
	if i := strings.IndexFunc(s, isControl); i >= 0 {
		return "", fmt.Errorf("value %q: control character U+%04X", s, runeAt(s, i))
	}
	if s == "" {
		return "''", nil
	}
	bare := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || !haproxyBare[c] {
			bare = false
			break
		}
	}
	if bare {
		return s, nil
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
}

// HAProxyLogFormat returns s as one word of a HAProxy log-format argument
// (a redirect location, a header value) that yields s literally: '%'
// doubled, then quoted as HAProxyWord.
func HAProxyLogFormat(s string) (string, error) {
	return HAProxyWord(strings.ReplaceAll(s, "%", "%%"))
}

// BirdString returns s as a BIRD string literal. BIRD's lexer reads a
// string as '"', any characters but '"' and a line break, '"'; it knows no
// escapes, so a value holding '"', a backslash or a control character cannot be
// written and is refused.
func BirdString(s string) (string, error) {
	if i := strings.IndexFunc(s, func(r rune) bool { return isControl(r) || r == '"' || r == '\\' }); i >= 0 {
		return "", fmt.Errorf("BIRD string %q: character %q not allowed", s, runeAt(s, i))
	}
	return `"` + s + `"`, nil
}

// BirdSymbol reports whether s is a BIRD symbol: a letter or '_', then
// letters, digits and '_' (BIRD 2's cf-lex.l), at most 64 bytes.
func BirdSymbol(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// BirdSymbolPart is s with every character BIRD does not accept in a symbol
// replaced by '_': the part of a protocol name that comes from a host or
// peer name (the caller adds a prefix that starts the symbol).
func BirdSymbolPart(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// In increases the depth; Out decreases it.
func (w *Writer) In()  { w.depth++ }
func (w *Writer) Out() { w.depth-- }

// Bytes returns what was written.
func (w *Writer) Bytes() []byte { return []byte(w.b.String()) }

// String returns what was written.
func (w *Writer) String() string { return w.b.String() }

// Duration formats milliseconds the way HAProxy and BIRD read them, with the
// largest exact unit: 3600000 is "1h", 30000 "30s", 1500 "1500ms".
func Duration(ms int) string {
	switch {
	case ms != 0 && ms%3600000 == 0:
		return fmt.Sprintf("%dh", ms/3600000)
	case ms != 0 && ms%60000 == 0:
		return fmt.Sprintf("%dm", ms/60000)
	case ms != 0 && ms%1000 == 0:
		return fmt.Sprintf("%ds", ms/1000)
	default:
		return fmt.Sprintf("%dms", ms)
	}
}

// Identifier maps s to a name made of [A-Za-z0-9._-] (plus extra), with '/'
// turned into '.' and any other character into '_'. Distinct inputs can map
// to the same output; callers that need uniqueness use Unique.
func Identifier(s, extra string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		case strings.ContainsRune(extra, r):
			b.WriteRune(r)
		case r == '/':
			b.WriteByte('.')
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// Unique returns names[i] for each input, made unique: inputs whose mapped
// names collide get a suffix "-N" (N counting from 2 in input order), so the
// result depends only on the input list. ids must be distinct.
func Unique(ids []string, mapped func(string) string) map[string]string {
	return UniqueSep(ids, mapped, "-")
}

// UniqueSep is Unique with sep before the counter: BIRD symbols take
// "_N" ('-' is no symbol character).
func UniqueSep(ids []string, mapped func(string) string, sep string) map[string]string {
	out := make(map[string]string, len(ids))
	count := map[string]int{}
	for _, id := range ids {
		count[mapped(id)]++
	}
	used := map[string]bool{}
	seen := map[string]int{}
	for _, id := range ids {
		m := mapped(id)
		if count[m] == 1 {
			out[id] = m
			used[m] = true
		}
	}
	for _, id := range ids {
		m := mapped(id)
		if count[m] == 1 {
			continue
		}
		seen[m]++
		name := m
		if seen[m] > 1 {
			name = fmt.Sprintf("%s%s%d", m, sep, seen[m])
		}
		for used[name] {
			seen[m]++
			name = fmt.Sprintf("%s%s%d", m, sep, seen[m])
		}
		used[name] = true
		out[id] = name
	}
	return out
}

// Strings is the text of each of xs (addresses, prefixes) in order; nil
// when xs is empty.
func Strings[T fmt.Stringer](xs []T) []string {
	if len(xs) == 0 {
		return nil
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}
