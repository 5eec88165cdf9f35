package haproxy

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
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

// State returns a process's state letter from /proc/<pid>/stat (R, S, D,
// T stopped, t traced, Z zombie...).
func State(procRoot string, pid int) (byte, error) {
	var buf [256]byte
	f, err := os.Open(fmt.Sprintf("%s/%d/stat", procRoot, pid))
	if err != nil {
		return 0, err
	}
	n, err := f.Read(buf[:])
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(buf[:n], ')')
	if i < 0 || i+2 >= n {
		return 0, fmt.Errorf("process %d: stat %q", pid, buf[:n])
	}
	return buf[i+2], nil
}

// Stopped reports whether process pid is stopped by a signal (T) or by a
// debugger (t).
func Stopped(procRoot string, pid int) (bool, error) {
	st, err := State(procRoot, pid)
	return st == 'T' || st == 't', err
}
