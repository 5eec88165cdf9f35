package haproxy

import (
	"errors"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestProcessState follows a real process: running (S), SIGSTOPped (T),
// continued, and gone once it exited and was reaped. Workers names a
// parent's child, and a process without children itself.
func TestProcessState(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var kids []int
	deadline := time.Now().Add(5 * time.Second)
	for len(kids) == 0 || kids[0] == cmd.Process.Pid {
		var err error
		if kids, err = Workers(ProcRoot, cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers of sh: %v, want its sleep", kids)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(kids) != 1 {
		t.Fatalf("workers of sh: %v, want one", kids)
	}
	if own, err := Workers(ProcRoot, kids[0]); err != nil || !slices.Equal(own, kids) {
		t.Fatalf("workers of a process without children: %v %v, want itself", own, err)
	}
	s, err := OpenStat(ProcRoot, kids[0])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := func(stopped bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			got, err := s.Stopped()
			if err != nil {
				t.Fatal(err)
			}
			if got == stopped {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("stopped %v, want %v", got, stopped)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	want(false)
	syscall.Kill(kids[0], syscall.SIGSTOP)
	want(true)
	syscall.Kill(kids[0], syscall.SIGCONT)
	want(false)
	syscall.Kill(kids[0], syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, err := s.State()
		if errors.Is(err, ErrGone) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGKILL and reaping: %v, want ErrGone", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
