package bundlediff

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Text writes a Diff for people. The zero value writes plain text, at
// most 100 columns wide and 20 names per kind in the summary.
type Text struct {
	// Color marks additions green, removals red, changes yellow and hunk
	// headers cyan with ANSI escapes (for a terminal).
	Color bool
	// Width is the width the summary wraps its names at (default 100).
	Width int
	// MaxNames is how many names of one kind the summary shows
	// (default 20); the counts are always complete.
	MaxNames int
}

const (
	ansiReset  = "\x1b[m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

func (t Text) paint(code, s string) string {
	if !t.Color || s == "" {
		return s
	}
	return code + s + ansiReset
}

func (t Text) width() int {
	if t.Width <= 0 {
		return 100
	}
	return t.Width
}

func (t Text) maxNames() int {
	if t.MaxNames <= 0 {
		return 20
	}
	return t.MaxNames
}

// WriteSummary prints the summary as plain text.
func (d *Diff) WriteSummary(w io.Writer) { Text{}.Summary(w, d) }

// WriteUnified prints the resolved model's diff and every file diff as
// plain text.
func (d *Diff) WriteUnified(w io.Writer) { Text{}.Unified(w, d) }

// item is one name in the summary with its sign (+ added, - removed,
// ~ changed).
type item struct{ sign, name string }

func changeItems(c Change) []item {
	var out []item
	for _, p := range []struct {
		sign  string
		names []string
	}{{"+", c.Added}, {"-", c.Removed}, {"~", c.Changed}} {
		for _, n := range p.names {
			out = append(out, item{p.sign, n})
		}
	}
	return out
}

// Summary prints one block per kind (services, vips, nodes, files): the
// counts, then the names, wrapped and limited.
//
//	services: 1 changed
//	          ~web/wiki
//	vips:     1 changed
//	          ~192.0.2.11
//	nodes:    unchanged
//	files:    1 changed on lb1, lb2
//	          ~vips/192.0.2.11/haproxy.cfg
func (t Text) Summary(w io.Writer, d *Diff) {
	if d.SiteChanged() {
		fmt.Fprintln(w, t.paint(ansiBold+ansiRed, fmt.Sprintf("SITE CHANGED: %q -> %q: these bundles belong to different sites; nodes of site %q refuse the new one",
			d.OldSite, d.NewSite, d.OldSite)))
	}
	for _, k := range []struct {
		kind string
		c    Change
	}{{"services", d.Services}, {"vips", d.VIPs}, {"nodes", d.Nodes}} {
		t.block(w, k.kind, countsText(len(k.c.Added), len(k.c.Removed), len(k.c.Changed)), changeItems(k.c))
	}
	fc := fileCounts(d.Files)
	head := countsText(fc.Added, fc.Removed, fc.Changed)
	all := allNodes(d.Files)
	if len(all) > 0 {
		head += " on " + strings.Join(all, ", ")
	}
	var items []item
	for _, f := range d.Files {
		name := f.Path
		if len(f.Nodes) != len(all) {
			name += " (" + strings.Join(f.Nodes, ", ") + ")"
		}
		items = append(items, item{map[string]string{FileAdded: "+", FileRemoved: "-", FileChanged: "~"}[f.Status], name})
	}
	t.block(w, "files", head, items)
}

// block prints one kind: "kind: counts", then its names wrapped at the
// width, indented, at most maxNames of them.
func (t Text) block(w io.Writer, kind, counts string, items []item) {
	const indent = "          "
	fmt.Fprintf(w, "%-9s %s\n", kind+":", counts)
	if len(items) == 0 {
		return
	}
	// vis is the visible width of line (colour escapes take none).
	line, vis, n := indent, len(indent), 0
	for _, it := range items {
		if n == t.maxNames() {
			break
		}
		word := it.sign + it.name
		if vis > len(indent) && vis+1+len(word) > t.width() {
			fmt.Fprintln(w, line)
			line, vis = indent, len(indent)
		}
		if vis > len(indent) {
			line, vis = line+" ", vis+1
		}
		line += t.paint(map[string]string{"+": ansiGreen, "-": ansiRed, "~": ansiYellow}[it.sign], word)
		vis += len(word)
		n++
	}
	if more := len(items) - n; more > 0 {
		tail := fmt.Sprintf("... and %s more (--json lists them all)", thousands(more))
		if vis+1+len(tail) > t.width() {
			fmt.Fprintln(w, line)
			line = indent + tail
		} else {
			line += " " + tail
		}
	}
	fmt.Fprintln(w, line)
}

// countsText is "2 added, 1 changed", or "unchanged".
func countsText(added, removed, changed int) string {
	var parts []string
	for _, p := range []struct {
		n    int
		word string
	}{{added, "added"}, {removed, "removed"}, {changed, "changed"}} {
		if p.n > 0 {
			parts = append(parts, thousands(p.n)+" "+p.word)
		}
	}
	if len(parts) == 0 {
		return "unchanged"
	}
	return strings.Join(parts, ", ")
}

// thousands writes n with thousands separators: 12,345.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// allNodes are the nodes any file changes on, sorted.
func allNodes(files []FileDiff) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		for _, n := range f.Nodes {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Stat prints one line per changed file with its count of changed lines
// and a bar of + and -, as git diff --stat does, and a total.
func (t Text) Stat(w io.Writer, d *Diff) {
	type row struct {
		name     string
		add, del int
	}
	var rows []row
	if d.Resolved != "" {
		a, r := countLines(d.Resolved)
		rows = append(rows, row{"resolved.json", a, r})
	}
	for _, f := range d.Files {
		rows = append(rows, row{f.Path + " (" + strings.Join(f.Nodes, ", ") + ")", f.LinesAdded, f.LinesRemoved})
	}
	nameW, maxN := 0, 0
	for _, r := range rows {
		nameW = max(nameW, len(r.name))
		maxN = max(maxN, r.add+r.del)
	}
	nameW = min(nameW, t.width()-30)
	bar := min(maxN, max(10, t.width()-nameW-12))
	var adds, dels int
	for _, r := range rows {
		name := r.name
		if len(name) > nameW {
			name = "..." + name[len(name)-nameW+3:]
		}
		plus, minus := r.add, r.del
		if maxN > bar {
			plus, minus = scale(r.add, maxN, bar), scale(r.del, maxN, bar)
		}
		fmt.Fprintf(w, " %-*s | %5d %s%s\n", nameW, name, r.add+r.del,
			t.paint(ansiGreen, strings.Repeat("+", plus)), t.paint(ansiRed, strings.Repeat("-", minus)))
		adds += r.add
		dels += r.del
	}
	fmt.Fprintf(w, " %s files changed, %s insertions(+), %s deletions(-)\n", thousands(len(rows)), thousands(adds), thousands(dels))
}

// scale scales n of total to width, at least 1 for a non-zero n.
func scale(n, total, width int) int {
	if n == 0 {
		return 0
	}
	return max(1, n*width/total)
}

// Unified prints the resolved model's diff, then every file diff once,
// after a line naming the nodes it applies to.
func (t Text) Unified(w io.Writer, d *Diff) {
	if d.Resolved != "" {
		fmt.Fprintln(w, t.paint(ansiBold, "diff resolved.json"))
		t.hunks(w, d.Resolved)
	}
	for _, f := range d.Files {
		fmt.Fprintln(w, t.paint(ansiBold, "diff "+strings.Join(f.Nodes, " ")+": "+f.Path))
		t.hunks(w, f.Unified)
	}
}

// hunks writes a unified diff, coloured by line.
func (t Text) hunks(w io.Writer, u string) {
	if !t.Color {
		io.WriteString(w, u)
		return
	}
	for line := range strings.Lines(u) {
		body := strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "+++ "), strings.HasPrefix(line, "--- "):
			body = t.paint(ansiBold, body)
		case strings.HasPrefix(line, "@@"):
			body = t.paint(ansiCyan, body)
		case strings.HasPrefix(line, "+"):
			body = t.paint(ansiGreen, body)
		case strings.HasPrefix(line, "-"):
			body = t.paint(ansiRed, body)
		}
		io.WriteString(w, body+"\n")
	}
}
