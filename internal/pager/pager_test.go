package pager

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "less"},
		{map[string]string{"PAGER": "more"}, "more"},
		{map[string]string{"PAGER": "more", "LBCTL_PAGER": "less -S"}, "less -S"},
		{map[string]string{"PAGER": ""}, ""},
		{map[string]string{"LBCTL_PAGER": "cat", "PAGER": "more"}, ""},
	} {
		got := Command(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.env, got, tc.want)
		}
	}
}

// TestStart: the pager gets the text and LESS=FRX unless LESS is set.
func TestStart(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"PATH=" + os.Getenv("PATH")}, "FRX\nhello\n"},
		{[]string{"PATH=" + os.Getenv("PATH"), "LESS=-S"}, "-S\nhello\n"},
	} {
		var out bytes.Buffer
		p, err := Start(`echo "$LESS"; cat`, &out, os.Stderr, tc.env)
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("hello\n"))
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("env %v: pager printed %q, want %q", tc.env, out.String(), tc.want)
		}
	}
	// A pager quit early: the rest is dropped without an error.
	p, err := Start("true", &bytes.Buffer{}, os.Stderr, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("x", 1<<20))
	for range 4 {
		if _, err := p.Write(big); err != nil {
			t.Fatalf("write to a quit pager: %v", err)
		}
	}
	p.Close()
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}
