package intent

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseYAML(t *testing.T) {
	cases := []struct {
		name, src string
		want      string // rendering of the tree, or "error: <substring>"
	}{
		{"scalars", "a: 1\nb: x\nc: true\nd: ~\ne: 1.5\nf: on\n", "{a:int(1) b:string(x) c:bool(true) d:null e:float(1.5) f:string(on)}"},
		{"empty", "", "null"},
		{"comment only", "# nothing\n", "null"},
		{"empty value is null at the key", "a:\n", "{a:null}"},
		{"anchor and alias", "x: &v {p: 1}\ny: *v\n", "{x:{p:int(1)} y:{p:int(1)}}"},
		{"merge key, explicit keys win", "base: &b {p: 1, q: 2}\nm:\n  <<: *b\n  q: 3\n", "{base:{p:int(1) q:int(2)} m:{q:int(3) p:int(1)}}"},
		{"merge key list, first wins", "a: &a {p: 1}\nb: &b {p: 2, q: 2}\nm: {<<: [*a, *b]}\n", "{a:{p:int(1)} b:{p:int(2) q:int(2)} m:{p:int(1) q:int(2)}}"},
		{"tags", "a: !!str 5\nb: !!int \"7\"\n", "{a:string(5) b:int(7)}"},
		{"block literal", "a: |\n  x\n  y\n", "error: 1:4: value \"x\\ny\\n\" holds a line break (values are one line)"},
		{"escaped CR", "a: \"web\\r\"\n", "error: 1:4: value \"web\\r\" holds a control character U+000D (carriage return)"},
		{"escaped NUL in a key", "\"a\\0\": 1\n", "error: 1:1: value \"a\\x00\" holds a control character U+0000 (NUL)"},
		{"escaped tab", "a: \"x\\ty\"\n", "error: 1:4: value \"x\\ty\" holds a control character U+0009 (tab)"},
		{"escaped C1", "a: \"x\\x85\"\n", "error: 1:4: value \"x\\u0085\" holds a control character U+0085"},
		{"tab between tokens", "a:\t1\n", "{a:int(1)}"},
		{"unknown tag", "a: !custom 5\n", "error: 1:4: unsupported tag !custom"},
		{"unknown alias", "a: *nope\n", "error: 1:4:"},
		{"duplicate key", "a: 1\na: 2\n", "error: 2:1: yaml: mapping key \"a\" already defined"},
		{"two documents", "a: 1\n---\nb: 2\n", "error: 3:2: a file holds exactly one YAML document"},
		{"bad merge", "m: {<<: 5}\n", "error: 1:5: merge key << needs a mapping"},
		{"complex key", "? [a]\n: 1\n", "error: 2:1: yaml: found an invalid key"},
		{"alias bomb", bomb(), "error: document too large"},
		{"alias bomb overflowing the count", deepBomb(25), "error: document too large"},
		{"deep nesting", strings.Repeat("[", 200) + strings.Repeat("]", 200), "error: nesting deeper than 100 levels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := parseYAML("f.yaml", []byte(c.src))
			if strings.HasPrefix(c.want, "error: ") {
				if err == nil {
					t.Fatalf("no error, got %s", render(n))
				}
				if !strings.Contains(err.Error(), strings.TrimPrefix(c.want, "error: ")) {
					t.Fatalf("error %q, want %q", err, c.want)
				}
				if !strings.HasPrefix(err.Error(), "f.yaml") {
					t.Errorf("error does not name the file: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := render(n); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// bomb is a "billion laughs" document: 10 levels of 10 aliases each.
func bomb() string {
	var b strings.Builder
	b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*l" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// deepBomb nests levels of 10 aliases: 10^levels values, more than an int
// holds for levels >= 19.
func deepBomb(levels int) string {
	var b strings.Builder
	b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func render(n *node) string {
	switch n.kind {
	case kindNull:
		return "null"
	case kindScalar:
		return n.tag.String2() + "(" + n.value + ")"
	case kindSeq:
		var parts []string
		for _, it := range n.items {
			parts = append(parts, render(it))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	var parts []string
	for i, k := range n.keys {
		parts = append(parts, k.value+":"+render(n.vals[i]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func (t tag) String2() string { return [...]string{"string", "int", "float", "bool", "null"}[t] }

func TestMergeAndLookup(t *testing.T) {
	parse := func(s string) *node {
		n, err := parseYAML("f.yaml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	base := parse("a: {x: 1, y: [1, 2]}\nb: 1\n")
	over := parse("a: {y: [3], z: 2}\nc: 3\n")
	m := merge(base, over)
	if got, want := render(m), "{a:{x:int(1) y:[int(3)] z:int(2)} b:int(1) c:int(3)}"; got != want {
		t.Errorf("merge: got %s, want %s", got, want)
	}
	if got := render(base); got != "{a:{x:int(1) y:[int(1) int(2)]} b:int(1)}" {
		t.Errorf("merge modified its input: %s", got)
	}
	if k := lookup(m, "a.z"); k == nil || k.pos.Line != 1 {
		t.Errorf("lookup a.z = %+v", k)
	}
	if k := lookup(m, "a.q"); k != nil {
		t.Errorf("lookup of an unset path found %+v", k)
	}
	if k := lookup(m, "b.x"); k != nil {
		t.Errorf("lookup through a scalar found %+v", k)
	}
}

func TestErrorsSortedAndDeduplicated(t *testing.T) {
	var l errList
	l.Add(Pos{File: "b.yaml", Line: 1, Col: 1}, "x")
	l.Add(Pos{File: "a.yaml", Line: 9, Col: 1}, "y")
	l.Add(Pos{File: "a.yaml", Line: 2, Col: 5}, "z")
	l.Add(Pos{File: "a.yaml", Line: 2, Col: 5}, "z")
	got := l.Err().Error()
	want := "a.yaml:2:5: z\na.yaml:9:1: y\nb.yaml:1:1: x"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
