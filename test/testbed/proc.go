package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Proc is a process the testbed started and will stop.
type Proc struct {
	// Role names the process: "bird-rr", "bird-router", "bird-lb1",
	// "backend-be1", ...
	Role  string `json:"role"`
	NetNS string `json:"netns"`
	PID   int    `json:"pid"`
	// Start is the process's start time (clock ticks after boot, field 22
	// of /proc/PID/stat): a PID is only signalled while it still names the
	// process the testbed started.
	Start uint64   `json:"start"`
	Argv  []string `json:"argv"`
	// Log receives the process's stdout and stderr.
	Log string `json:"log"`
}

// procStat returns the start time and state letter of pid.
func procStat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err
}

// alive reports whether pid still runs and is the process started at start
// (zombies count as gone: nobody may reap orphans on this machine).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, state, err := procStat(pid)
	return err == nil && s == start && state != 'Z' && state != 'X'
}

// Alive reports whether the process still runs.
func (p Proc) Alive() bool { return alive(p.PID, p.Start) }

// startIn starts argv inside the network namespace at nsPath, detached
// (own session, no parent death signal), so it outlives this process. Its
// output goes to logPath. The returned channel closes once it has been
// reaped (only this process can reap it).
func startIn(nsPath, role, nsName, logPath string, argv []string, env []string) (Proc, <-chan struct{}, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, nil, fmt.Errorf("%s: log: %w", role, err)
	}
	defer logf.Close()
	full := append([]string{"nsenter", "--net=" + nsPath, "--"}, argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, nil, fmt.Errorf("%s: start %q: %w", role, argv, err)
	}
	p := Proc{Role: role, NetNS: nsName, PID: cmd.Process.Pid, Argv: argv, Log: logPath}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	// nsenter execs argv, so the PID stays; the start time is the fork's.
	start, _, err := procStat(p.PID)
	if err != nil {
		_ = cmd.Process.Kill()
		<-done
		return Proc{}, nil, fmt.Errorf("%s: %w", role, err)
	}
	p.Start = start
	return p, done, nil
}

// stopPID sends sig to a recorded process, then SIGKILL after grace, and
// waits until it is gone (reaped, or a zombie of someone else).
func stopPID(pid int, start uint64, sig syscall.Signal, grace time.Duration, done <-chan struct{}) error {
	if !alive(pid, start) {
		if done != nil {
			<-done
		}
		return nil
	}
	_ = unix.Kill(pid, sig)
	if waitGone(pid, start, grace, done) {
		return nil
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	if waitGone(pid, start, 5*time.Second, done) {
		return nil
	}
	return fmt.Errorf("process %d still alive 5s after SIGKILL", pid)
}

func waitGone(pid int, start uint64, d time.Duration, done <-chan struct{}) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if done != nil {
			select {
			case <-done:
				return true
			case <-time.After(5 * time.Millisecond):
			}
		} else {
			time.Sleep(5 * time.Millisecond)
		}
		if done == nil && !alive(pid, start) {
			return true
		}
	}
	return false
}

// ipCmd runs ip(8) with args.
func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
