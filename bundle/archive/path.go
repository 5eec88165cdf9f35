package archive

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxPathLen bounds a member name; USTAR holds at most 255 bytes anyway.
const maxPathLen = 255

// CheckPath reports whether p is a safe relative member name: non-empty,
// valid UTF-8 without control characters or backslashes, not absolute, made
// of non-empty elements none of which is "." or "..", at most 255 bytes.
// The error wraps ErrUnsafePath.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%q: %s: %w", p, why, ErrUnsafePath) }
	switch {
	case p == "":
		return bad("empty name")
	case len(p) > maxPathLen:
		return bad("name too long")
	case !utf8.ValidString(p):
		return bad("not utf-8")
	case strings.HasPrefix(p, "/"):
		return bad("absolute name")
	case strings.Contains(p, `\`):
		return bad("backslash in name")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return bad("control character in name")
		}
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "":
			return bad("empty path element")
		case ".", "..":
			return bad(fmt.Sprintf("%q path element", el))
		}
	}
	return nil
}
