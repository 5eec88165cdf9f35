package haproxy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// A hung HAProxy keeps its sockets, and only its process state tells it
// apart without asking it anything: a SIGSTOPped process is in state T.
// The process that listens on a VIP's stats socket is known from the
// socket itself (SO_PEERCRED, StatsFrom): HAProxy's master in master-worker
// mode, whose children are the worker and the old workers still finishing
// their connections after a reload; without master-worker, HAProxy itself.

// ProcRoot is where /proc is mounted.
const ProcRoot = "/proc"

// Workers returns the processes serving for the HAProxy that listens with
// pid: its children, or pid itself when it has none. It reads
// /proc/<pid>/task/<pid>/children.
func Workers(procRoot string, pid int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/task/%d/children", procRoot, pid, pid))
	if err != nil {
		return nil, fmt.Errorf("haproxy %d: workers: %w", pid, err)
	}
	var out []int
	for f := range bytes.FieldsSeq(b) {
		if c, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		out = []int{pid}
	}
	return out, nil
}

// Stat is a process's /proc/<pid>/stat kept open: each State is one
// pread, not an open, read and close (the agent asks about every VIP's
// HAProxy twice a second).
type Stat struct {
	pid int
	fd  int
}

// OpenStat opens /proc/<pid>/stat under procRoot.
func OpenStat(procRoot string, pid int) (*Stat, error) {
	fd, err := unix.Open(fmt.Sprintf("%s/%d/stat", procRoot, pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return &Stat{pid: pid, fd: fd}, nil
}

// ErrGone is returned by State once the process has exited.
var ErrGone = errors.New("process gone")

// State returns the process's state letter (R, S, D, T stopped, t traced,
// Z zombie...), or ErrGone once it has exited.
func (s *Stat) State() (byte, error) {
	var buf [256]byte
	n, err := unix.Pread(s.fd, buf[:], 0)
	if errors.Is(err, unix.ESRCH) || err == nil && n == 0 {
		return 0, fmt.Errorf("process %d: %w", s.pid, ErrGone)
	}
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", s.pid, err)
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(buf[:n], ')')
	if i < 0 || i+2 >= n {
		return 0, fmt.Errorf("process %d: stat %q", s.pid, buf[:n])
	}
	return buf[i+2], nil
}

// Stopped reports whether the process is stopped by a signal (T) or by a
// debugger (t).
func (s *Stat) Stopped() (bool, error) {
	st, err := s.State()
	return st == 'T' || st == 't', err
}

// Close closes the file.
func (s *Stat) Close() error { return unix.Close(s.fd) }

// PID is the process's ID.
func (s *Stat) PID() int { return s.pid }
