// Package yamltext checks the raw text of a YAML file before a parser sees
// it, and the values a parser gives back: the input bounds that a parser
// does not enforce (file size, anchors and aliases, which make go-yaml slow
// long before any expansion limit applies) and the characters no intents
// or inventory value may hold (control characters, invalid UTF-8).
//
// It is shared by the intents loader and the inventory parser; it reads
// nothing itself. Where a problem is reported (positions, error lists,
// suggestions) is bundle/internal/yamlpos's.
package yamltext

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Limits bound one file.
type Limits struct {
	// MaxBytes is the largest file accepted.
	MaxBytes int64
	// MaxAliases is the most anchors plus aliases ("&name", "*name") a
	// file may hold.
	MaxAliases int
}

// Problem is what is wrong with a file, at a 1-based line and column
// (columns count characters); Line is zero for the whole file.
type Problem struct {
	Line, Col int
	Msg       string
}

func (p *Problem) Error() string {
	if p.Line == 0 {
		return p.Msg
	}
	return fmt.Sprintf("%d:%d: %s", p.Line, p.Col, p.Msg)
}

// ReadAll reads r into buf (reused, grown as needed), refusing more than
// lim.MaxBytes without reading further. It returns the bytes read.
func ReadAll(r io.Reader, buf []byte, lim Limits) ([]byte, error) {
	b := buf[:0]
	lr := io.LimitReader(r, lim.MaxBytes+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return b, err
		}
	}
	if int64(len(b)) > lim.MaxBytes {
		return b, TooLarge(lim)
	}
	return b, nil
}

// TooLarge is the Problem of a file over lim.MaxBytes.
func TooLarge(lim Limits) *Problem {
	return &Problem{Msg: fmt.Sprintf("file too large: more than %s (the limit per file)", size(lim.MaxBytes))}
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Check checks the text of a YAML file: at most lim.MaxBytes, UTF-8, no
// control character but tab and line ends, at most lim.MaxAliases anchors
// and aliases. Lines may end in LF or CRLF and the file may start with a
// byte order mark (Windows editors); a carriage return anywhere else is
// refused. It returns data without the mark and with CRLF turned into LF
// (data itself when there is neither), or the first problem.
func Check(data []byte, lim Limits) ([]byte, *Problem) {
	if int64(len(data)) > lim.MaxBytes {
		return nil, TooLarge(lim)
	}
	// A byte order mark (Windows editors write one) is not part of the
	// text; editors do not show it, so columns count without it.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	line, col := 1, 1
	crlf := false
	aliases := 0
	prev := byte('\n')
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '\n':
			line, col = line+1, 1
			prev = c
			i++
			continue
		case c == '\t':
		case c == '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				crlf = true
				break
			}
			return nil, &Problem{line, col, "carriage return (CR) inside a line: lines end in LF or CRLF, and values cannot hold a CR"}
		case c < 0x20 || c == 0x7f:
			return nil, &Problem{line, col, "control character " + Name(rune(c)) + " (is this a text file?)"}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, &Problem{line, col, fmt.Sprintf("invalid UTF-8 (byte 0x%02x): intents files are UTF-8 text", c)}
			}
			if IsControl(r) {
				return nil, &Problem{line, col, "control character " + Name(r)}
			}
			i += n
			col++
			prev = 'x'
			continue
		case (c == '&' || c == '*') && isTokenStart(prev) && i+1 < len(data) && !isBlank(data[i+1]):
			aliases++
			if aliases > lim.MaxAliases {
				return nil, &Problem{line, col, fmt.Sprintf("more than %d anchors and aliases (the limit per file)", lim.MaxAliases)}
			}
		}
		prev = c
		i++
		col++
	}
	if crlf {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	}
	return data, nil
}

// isTokenStart reports whether a YAML anchor or alias may start after b.
func isTokenStart(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '[', '{', ',':
		return true
	}
	return false
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// IsControl reports the characters no value may hold: C0 (tab and line
// feed included: a value is one line), DEL and C1.
func IsControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f)
}

// ControlIn returns the first control character in s and whether there
// is one.
func ControlIn(s string) (rune, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return rune(c), true
		}
		if c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f {
			return rune(s[i+1]), true // C1 control, encoded as C2 80..9F
		}
	}
	return 0, false
}

// ControlInText is ControlIn allowing tab and line feed: for free text such
// as an inventory variable, which may be a multi-line block.
func ControlInText(s string) (rune, bool) {
	for {
		r, bad := ControlIn(s)
		if !bad || (r != '\t' && r != '\n') {
			return r, bad
		}
		s = s[strings.IndexRune(s, r)+1:]
	}
}

// Name names a control character for a message: "U+000D (carriage
// return)".
func Name(r rune) string {
	s := fmt.Sprintf("U+%04X", r)
	switch r {
	case 0:
		return s + " (NUL)"
	case '\t':
		return s + " (tab)"
	case '\n':
		return s + " (line feed)"
	case '\r':
		return s + " (carriage return)"
	case 0x1b:
		return s + " (escape)"
	case 0x7f:
		return s + " (delete)"
	}
	return s
}

// Short quotes s for a message, cut to about 40 characters.
func Short(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	n := 0
	for i := range s {
		if n == max {
			return fmt.Sprintf("%q…(%d bytes)", s[:i], len(s))
		}
		n++
	}
	return fmt.Sprintf("%q", s)
}
