package text_test

import (
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
