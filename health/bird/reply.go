package bird

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Reply codes of the BIRD control socket used by this package. The first
// digit classifies a code: 0 done, 1 table data, 2 table heading, 8 run-time
// error, 9 parse error.
const (
	CodeOK                 = 0
	CodeWelcome            = 1
	CodeReadingConfig      = 2
	CodeReconfigured       = 3
	CodeReconfigInProgress = 4
	CodeReconfigQueued     = 5
	CodeReconfigIgnored    = 6 // shutting down
	CodeReconfigUnqueued   = 17
	CodeReconfigConfirmed  = 18
	CodeNothingToDo        = 19
	CodeConfigOK           = 20
	CodeStatusReport       = 13
	CodeProtocolList       = 1002
	CodeRouteList          = 1007
	CodeConfigFileError    = 8002
	CodeParseError         = 9001
)

const (
	codeRuntimeErrorMinimum = 8000
	maxReplyLines           = 1 << 20
	maxLineLength           = 64 << 10
)

// Line is one line of a reply. Continuation lines without a code of their own
// carry the code of the line before them.
type Line struct {
	Code int
	Text string
}

// Reply is the complete answer to one command: every line up to and
// including the final one (the one with a space after its code).
type Reply struct {
	Lines []Line
}

// Code is the code of the final line.
func (r *Reply) Code() int {
	if len(r.Lines) == 0 {
		return -1
	}
	return r.Lines[len(r.Lines)-1].Code
}

// Text is the text of the final line.
func (r *Reply) Text() string {
	if len(r.Lines) == 0 {
		return ""
	}
	return r.Lines[len(r.Lines)-1].Text
}

// IsError reports whether code is a run-time (8xxx) or parse (9xxx) error.
func IsError(code int) bool { return code >= codeRuntimeErrorMinimum }

// ReplyError is an error reply of BIRD (codes 8xxx and 9xxx). For a
// configuration error (8002) Message carries BIRD's "file:line:col message".
type ReplyError struct {
	Command string
	Code    int
	Message string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("bird: %s: %04d %s", e.Command, e.Code, e.Message)
}

// ErrProtocol means the peer did not speak BIRD's reply protocol.
var ErrProtocol = errors.New("bird: malformed reply")

// readReply reads one reply. Lines starting with '+' are spontaneous
// printouts and are skipped.
func readReply(r *bufio.Reader) (*Reply, error) {
	reply := &Reply{}
	last := -1
	for len(reply.Lines) < maxReplyLines {
		raw, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) && len(reply.Lines) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		code, text, final, kind := splitLine(raw)
		switch kind {
		case lineSpontaneous:
			continue
		case lineMalformed:
			return nil, fmt.Errorf("%w: %q", ErrProtocol, raw)
		case lineContinuation:
			if last < 0 {
				return nil, fmt.Errorf("%w: continuation before any code: %q", ErrProtocol, raw)
			}
			code = last
		}
		last = code
		reply.Lines = append(reply.Lines, Line{Code: code, Text: text})
		if final {
			return reply, nil
		}
	}
	return nil, fmt.Errorf("%w: more than %d lines", ErrProtocol, maxReplyLines)
}

func readLine(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return "", err
		}
		sb.Write(chunk)
		if sb.Len() > maxLineLength {
			return "", fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, maxLineLength)
		}
		if !isPrefix {
			return sb.String(), nil
		}
	}
}

type lineKind int

const (
	lineCoded lineKind = iota
	lineContinuation
	lineSpontaneous
	lineMalformed
)

// splitLine classifies one line: "DDDD-text" (more follows), "DDDD text"
// (final), " text" (continuation of the previous code) or "+..."
// (spontaneous printout).
func splitLine(s string) (code int, text string, final bool, kind lineKind) {
	if len(s) >= 5 && isDigits(s[:4]) && (s[4] == '-' || s[4] == ' ') {
		for _, c := range s[:4] {
			code = code*10 + int(c-'0')
		}
		return code, s[5:], s[4] == ' ', lineCoded
	}
	if len(s) == 4 && isDigits(s) { // final line whose trailing space was lost
		for _, c := range s {
			code = code*10 + int(c-'0')
		}
		return code, "", true, lineCoded
	}
	if strings.HasPrefix(s, " ") {
		return 0, s[1:], false, lineContinuation
	}
	if strings.HasPrefix(s, "+") {
		return 0, s, false, lineSpontaneous
	}
	return 0, "", false, lineMalformed
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
