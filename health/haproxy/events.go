package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// HAProxy logs every change of a server's or a backend's state ("Server
// be/web1 is DOWN, reason: ...", "backend be has no server available!") at
// level notice or above. Each VIP's haproxy.cfg sends those levels (not
// the traffic logs, which are info) in RFC 5424 format, tagged with the
// VIP's name (log-tag), to one unix datagram socket the agent listens on
// (EventsSocket). An event is a hint that a VIP's backend state changed,
// never a verdict: the agent then reads the VIP's show stat at once, and
// anything may be written to the socket without changing what it decides.

// Event is one HAProxy log message of level notice or above.
type Event struct {
	// Tag is the log-tag: the VIP's name.
	Tag string
	// PID is the process that logged it (HAProxy's worker), 0 if absent.
	PID int
	// Severity is the syslog severity (0 emerg .. 5 notice).
	Severity int
	// Text is the message, such as "Server be/web1 is DOWN, reason: ...".
	Text string
}

// ParseEvent reads one RFC 5424 message as HAProxy sends it ("<PRI>1
// TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG").
func ParseEvent(b []byte) (Event, error) {
	var ev Event
	rest, ok := bytes.CutPrefix(b, []byte("<"))
	pri, rest, ok2 := bytes.Cut(rest, []byte(">"))
	if !ok || !ok2 {
		return ev, fmt.Errorf("haproxy event: no priority in %.40q", b)
	}
	p, err := strconv.Atoi(string(pri))
	if err != nil || p < 0 || p > 191 {
		return ev, fmt.Errorf("haproxy event: priority %q", pri)
	}
	ev.Severity = p % 8
	// VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA
	var f [7][]byte
	for i := range f {
		var found bool
		f[i], rest, found = bytes.Cut(rest, []byte(" "))
		if !found {
			return ev, fmt.Errorf("haproxy event: not RFC 5424: %.60q", b)
		}
	}
	if string(f[0]) != "1" {
		return ev, fmt.Errorf("haproxy event: not RFC 5424 (version %q)", f[0])
	}
	if string(f[3]) == "-" || len(f[3]) == 0 {
		return ev, fmt.Errorf("haproxy event: no tag in %.60q", b)
	}
	ev.Tag = string(f[3])
	if pid, err := strconv.Atoi(string(f[4])); err == nil {
		ev.PID = pid
	}
	ev.Text = string(bytes.TrimRight(rest, "\r\n"))
	return ev, nil
}

// Events listens for HAProxy's log messages on a unix datagram socket.
type Events struct {
	conn *net.UnixConn
	path string
}

// ListenEvents binds the socket at path, replacing a stale one. Every
// local user may write to it (mode 0666): HAProxy runs as its own user,
// and a message only makes the agent read a VIP's state again.
func ListenEvents(path string) (*Events, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("haproxy events socket %s: %w", path, err)
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("haproxy events socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		c.Close()
		return nil, fmt.Errorf("haproxy events socket %s: %w", path, err)
	}
	// A burst (every server of a shared group going down in every VIP)
	// must not be dropped while the agent reads.
	_ = c.SetReadBuffer(1 << 20)
	return &Events{conn: c, path: path}, nil
}

// Run reads messages until ctx ends or the socket is closed, calling fn
// for each one that parses and bad for each one that does not (bad may be
// nil). It returns nil when ctx ended.
func (e *Events) Run(ctx context.Context, fn func(Event), bad func(error)) error {
	stop := context.AfterFunc(ctx, func() { e.conn.Close() })
	defer stop()
	buf := make([]byte, 8192)
	for {
		n, err := e.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("haproxy events socket %s: %w", e.path, err)
		}
		ev, err := ParseEvent(buf[:n])
		switch {
		case err == nil:
			fn(ev)
		case bad != nil:
			bad(err)
		}
	}
}

// Close closes the socket and removes it.
func (e *Events) Close() error {
	err := e.conn.Close()
	if rerr := os.Remove(e.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}
