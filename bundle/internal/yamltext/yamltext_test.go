package yamltext

import (
	"bytes"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	lim := Limits{MaxBytes: 200, MaxAliases: 3}
	for _, c := range []struct {
		name, in string
		want     string // the text returned, or "error: line:col: message substring"
	}{
		{"plain", "a: 1\nb: [x, y]\n", "a: 1\nb: [x, y]\n"},
		{"tab between tokens", "a:\t1\n", "a:\t1\n"},
		{"CRLF", "a: 1\r\nb: 2\r\n", "a: 1\nb: 2\n"},
		{"byte order mark", "\ufeffa: 1\n", "a: 1\n"},
		{"UTF-8", "a: Zürich\n", "a: Zürich\n"},
		{"lone CR", "a: 1\nb: x\ry\n", "error: 2:5: carriage return (CR) inside a line"},
		{"CR at the end", "a: 1\r", "error: 1:5: carriage return"},
		{"CR in a CRLF file", "a: 1\r\nb: \"x\ry\"\r\n", "error: 2:6: carriage return"},
		{"NUL", "a: 1\nb: \x00\n", "error: 2:4: control character U+0000 (NUL) (is this a text file?)"},
		{"escape", "a: \x1b[31m\n", "error: 1:4: control character U+001B (escape)"},
		{"DEL", "a: x\x7f\n", "error: 1:5: control character U+007F (delete)"},
		{"C1", "a: x\u0085\n", "error: 1:5: control character U+0085"},
		{"invalid UTF-8 counts columns in characters", "a: ü\xff\n", "error: 1:5: invalid UTF-8 (byte 0xff)"},
		{"too large", strings.Repeat("#", 201), "error: 0:0: file too large: more than 200 bytes"},
		{"anchors and aliases", "a: &x 1\nb: *x\nc: [*x, *x]\n", "error: 3:9: more than 3 anchors and aliases"},
		{"stars and ampersands inside words are not aliases", "a: x*y&z\nb: '*'\nc: \"& *\"\nd: a*b\ne: 2*3\n", "a: x*y&z\nb: '*'\nc: \"& *\"\nd: a*b\ne: 2*3\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, p := Check([]byte(c.in), lim)
			if msg, ok := strings.CutPrefix(c.want, "error: "); ok {
				pos, text, _ := strings.Cut(msg, ": ")
				if p == nil {
					t.Fatalf("no problem, got %q", got)
				}
				if gotPos := strings.SplitN(p.Error(), ": ", 2)[0]; p.Line != 0 && gotPos != pos {
					t.Errorf("position %s, want %s (%v)", gotPos, pos, p)
				}
				if p.Line == 0 && pos != "0:0" {
					t.Errorf("no position, want %s (%v)", pos, p)
				}
				if !strings.Contains(p.Msg, text) {
					t.Errorf("message %q, want %q", p.Msg, text)
				}
				return
			}
			if p != nil {
				t.Fatal(p)
			}
			if string(got) != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestReadAllStopsAtTheLimit(t *testing.T) {
	r := &countingReader{r: bytes.NewReader(make([]byte, 10<<20))}
	_, err := ReadAll(r, nil, Limits{MaxBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "file too large: more than 1 MiB") {
		t.Errorf("err = %v", err)
	}
	if r.n > 1<<20+1 {
		t.Errorf("read %d bytes, want at most the limit + 1", r.n)
	}
	b, err := ReadAll(strings.NewReader("a: 1\n"), make([]byte, 0, 2), Limits{MaxBytes: 5})
	if err != nil || string(b) != "a: 1\n" {
		t.Errorf("ReadAll = %q, %v", b, err)
	}
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestControlIn(t *testing.T) {
	for in, want := range map[string]bool{
		"web": false, "Zürich": false, "a\tb": true, "a\nb": true, "a\rb": true, "\x00": true, "x\u0085": true, "\u00a0": false,
	} {
		if _, got := ControlIn(in); got != want {
			t.Errorf("ControlIn(%q) = %v, want %v", in, got, want)
		}
	}
	for in, want := range map[string]bool{"a\tb\nc": false, "a\nb\r": true, "x\x1b": true} {
		if _, got := ControlInText(in); got != want {
			t.Errorf("ControlInText(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestShort(t *testing.T) {
	if got := Short("web"); got != `"web"` {
		t.Errorf("Short = %s", got)
	}
	if got, want := Short(strings.Repeat("ü", 50)), `"`+strings.Repeat("ü", 40)+`"…(100 bytes)`; got != want {
		t.Errorf("Short = %s, want %s", got, want)
	}
}
