package yamlpos

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/token"
)

// Pos is a position in a YAML file. File is the path as shown to the
// operator; Line and Col are 1-based (columns count characters), zero when
// unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.File == "" && p.Line == 0:
		return ""
	case p.File == "":
		return fmt.Sprintf("%d:%d", p.Line, p.Col)
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// TokenPos is the position of a go-yaml token in file (only the file when
// the token has none).
func TokenPos(file string, tk *token.Token) Pos {
	if tk == nil || tk.Position == nil {
		return Pos{File: file}
	}
	return Pos{File: file, Line: tk.Position.Line, Col: tk.Position.Column}
}

// Error is one problem, at a position.
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

// Syntax turns an error of the go-yaml parser into a positioned Error: its
// message without go-yaml's source excerpt, at its token. An error that is
// not go-yaml's keeps its first line, at the file.
func Syntax(file string, err error) *Error {
	var yerr yaml.Error
	if errors.As(err, &yerr) {
		return &Error{Pos: TokenPos(file, yerr.GetToken()), Msg: yerr.GetMessage(), Err: err}
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return &Error{Pos: Pos{File: file}, Msg: msg, Err: err}
}

// Errors are all the problems found, one a line. It is what a loader
// returns when anything is wrong; errors.Is and errors.As see each one.
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

// MaxMsg bounds a message: values are quoted short (yamltext.Short), and
// this catches the rest (a long name from another package's error).
const MaxMsg = 1000

func capMsg(s string) string {
	if len(s) <= MaxMsg {
		return s
	}
	i := MaxMsg
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// List collects problems so that a loader reports all of them at once.
// The zero List is empty and ready.
type List struct {
	list []*Error
}

// Add adds a problem at p.
func (l *List) Add(p Pos, format string, args ...any) {
	l.list = append(l.list, &Error{Pos: p, Msg: capMsg(fmt.Sprintf(format, args...))})
}

// Wrap adds a problem at p caused by err: "message: err".
func (l *List) Wrap(p Pos, err error, format string, args ...any) {
	l.list = append(l.list, &Error{Pos: p, Msg: capMsg(fmt.Sprintf(format, args...) + ": " + err.Error()), Err: err})
}

// AddErr adds a problem as it is.
func (l *List) AddErr(e *Error) { l.list = append(l.list, e) }

// Append adds every problem of o.
func (l *List) Append(o *List) { l.list = append(l.list, o.list...) }

// Len is the number of problems added.
func (l *List) Len() int { return len(l.list) }

// Empty reports whether no problem was added.
func (l *List) Empty() bool { return len(l.list) == 0 }

// All returns the problems in the order they were added.
func (l *List) All() Errors { return slices.Clone(l.list) }

// Sorted returns the problems sorted by file, line, column and message,
// without duplicates.
func (l *List) Sorted() Errors {
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

// Err returns Sorted as an error, or nil when the list is empty.
func (l *List) Err() error {
	if l.Empty() {
		return nil
	}
	return l.Sorted()
}
