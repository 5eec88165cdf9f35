package intent

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/lbctl/lbctl/bundle/internal/yamltext"
)

// Pos is a position in an intents file. File is the path as shown to the
// operator (the tree directory joined with the file's path in the tree);
// Line and Col are 1-based, zero when unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Error is one problem in the intents, at a position.
type Error struct {
	Pos Pos
	Msg string
	// Err is the underlying error, if any (for errors.Is/As).
	Err error
}

func (e *Error) Error() string {
	if s := e.Pos.String(); s != "" {
		return s + ": " + e.Msg
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errors are all the problems found in a tree, sorted by file, line,
// column and message, without duplicates. It is what Load and Resolve return
// when anything is wrong.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap gives the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// errList collects errors; err() returns them sorted and deduplicated.
type errList struct {
	list []*Error
}

// short quotes a value for a message, cut to about 40 characters.
func short(s string) string { return yamltext.Short(s) }

// maxMsg bounds a message: values are quoted short, and this catches the
// rest (a long name from another package's error).
const maxMsg = 1000

func capMsg(s string) string {
	if len(s) <= maxMsg {
		return s
	}
	i := maxMsg
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func (l *errList) add(p Pos, format string, args ...any) {
	l.list = append(l.list, &Error{Pos: p, Msg: capMsg(fmt.Sprintf(format, args...))})
}

func (l *errList) wrap(p Pos, err error, format string, args ...any) {
	l.list = append(l.list, &Error{Pos: p, Msg: capMsg(fmt.Sprintf(format, args...) + ": " + err.Error()), Err: err})
}

func (l *errList) addErr(e *Error) { l.list = append(l.list, e) }

func (l *errList) empty() bool { return len(l.list) == 0 }

func (l *errList) sorted() Errors {
	es := slices.Clone(l.list)
	slices.SortFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return a.Pos == b.Pos && a.Msg == b.Msg })
}

func (l *errList) err() error {
	if l.empty() {
		return nil
	}
	return l.sorted()
}
