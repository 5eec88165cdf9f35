package text_test

import (
	"strings"
	"testing"

	_ "github.com/lbctl/lbctl/bundle/render/internal/rendertest" // -update flag
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

func TestDuration(t *testing.T) {
	for ms, want := range map[int]string{0: "0ms", 1500: "1500ms", 2000: "2s", 90000: "90s", 120000: "2m", 3600000: "1h", 28800000: "8h", 5400000: "90m"} {
		if got := text.Duration(ms); got != want {
			t.Errorf("Duration(%d) = %q, want %q", ms, got, want)
		}
	}
}

func TestIdentifier(t *testing.T) {
	for in, want := range map[string]string{"web/typo3/physik": "web.typo3.physik", "a b:c": "a_b_c", "": "_", "x-y_z.1": "x-y_z.1"} {
		if got := text.Identifier(in, ""); got != want {
			t.Errorf("Identifier(%q) = %q, want %q", in, got, want)
		}
	}
	if got := text.Identifier("a:b", ":"); got != "a:b" {
		t.Errorf("extra characters kept: %q", got)
	}
}

func TestUnique(t *testing.T) {
	ids := []string{"web/a.b", "web.a/b", "web/c", "web.a.b-2", "x y", "x_y"}
	got := text.Unique(ids, func(s string) string { return text.Identifier(s, "") })
	want := map[string]string{
		"web/a.b":   "web.a.b",
		"web.a/b":   "web.a.b-3", // web.a.b-2 is taken by an input that maps to itself
		"web/c":     "web.c",
		"web.a.b-2": "web.a.b-2",
		"x y":       "x_y",
		"x_y":       "x_y-2",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Unique[%q] = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	seen := map[string]bool{}
	for _, v := range got {
		if seen[v] {
			t.Errorf("duplicate %q in %v", v, got)
		}
		seen[v] = true
	}
}

func TestWriterRefusesControlCharacters(t *testing.T) {
	w := text.NewWriter("\t")
	w.Line("global")
	w.In()
	w.Line("log %s", "x\nglobal")
	w.Line("name %s", "a\rb")
	w.Line("nul %s", "a\x00b")
	w.Line("c1 %s", "a\u0085b")
	w.Line("ok %s", "b")
	if got := w.String(); got != "global\n\tok b\n" {
		t.Errorf("written: %q", got)
	}
	err := w.Err()
	for _, want := range []string{"U+000A", "U+000D", "U+0000", "U+0085"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %v, lacks %s", err, want)
		}
	}
}

func TestHAProxyWord(t *testing.T) {
	for in, want := range map[string]string{
		"/health":                 "/health",
		"https://x.example/a?b=1": "https://x.example/a?b=1",
		"":                        "''",
		"a b":                     "'a b'",
		"a#b":                     "'a#b'",
		`"$HOME"`:                 `'"$HOME"'`,
		`a\b`:                     `'a\b'`,
		"it's":                    `'it'\''s'`,
		"{ x }":                   "'{ x }'",
	} {
		got, err := text.HAProxyWord(in)
		if err != nil || got != want {
			t.Errorf("HAProxyWord(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"a\nb", "a\rb", "a\x00b", "\x7f"} {
		if got, err := text.HAProxyWord(in); err == nil {
			t.Errorf("HAProxyWord(%q) = %q, want an error", in, got)
		}
	}
	if got, _ := text.HAProxyLogFormat("/a%20b%[src]"); got != "/a%%20b%%[src]" {
		t.Errorf("HAProxyLogFormat: %q", got)
	}
}

func TestBird(t *testing.T) {
	if got, err := text.BirdString("route reflector rr1 (iBGP)"); err != nil || got != `"route reflector rr1 (iBGP)"` {
		t.Errorf("BirdString: %q %v", got, err)
	}
	for _, in := range []string{`a"; import all; #`, "a\nb", `a\`} {
		if got, err := text.BirdString(in); err == nil {
			t.Errorf("BirdString(%q) = %q, want an error", in, got)
		}
	}
	for in, want := range map[string]bool{"bgp_rr1": true, "_x": true, "1x": false, "a-b": false, "": false, "a b": false} {
		if text.BirdSymbol(in) != want {
			t.Errorf("BirdSymbol(%q) != %v", in, want)
		}
	}
}
