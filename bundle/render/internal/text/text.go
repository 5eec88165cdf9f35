// Package text holds small helpers shared by the renderers: an indenting
// line writer, HAProxy-style durations and name sanitising. It is pure: no
// file system, clock or network.
package text

import (
	"fmt"
	"strings"
)

// Writer accumulates lines of a configuration file.
type Writer struct {
	b      strings.Builder
	indent string
	depth  int
}

// NewWriter returns a Writer that indents nested lines with indent.
func NewWriter(indent string) *Writer { return &Writer{indent: indent} }

// Line writes one line at the current depth; an empty format writes an empty
// line without indentation.
func (w *Writer) Line(format string, a ...any) {
	if format == "" {
		w.b.WriteByte('\n')
		return
	}
	for i := 0; i < w.depth; i++ {
		w.b.WriteString(w.indent)
	}
	fmt.Fprintf(&w.b, format, a...)
	w.b.WriteByte('\n')
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
			name = fmt.Sprintf("%s-%d", m, seen[m])
		}
		for used[name] {
			seen[m]++
			name = fmt.Sprintf("%s-%d", m, seen[m])
		}
		used[name] = true
		out[id] = name
	}
	return out
}
