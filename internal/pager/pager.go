// Package pager shows long output through the user's pager when it goes to
// a terminal, as git does: $LBCTL_PAGER, else $PAGER, else less, with
// LESS=FRX unless LESS is set (quit if one screen, raw colour escapes, no
// screen clearing). It does no more: the caller decides whether output is
// long and whether a terminal wants it.
package pager

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Command is the pager command line that lookup (os.LookupEnv) names:
// $LBCTL_PAGER, else $PAGER, else less; "" when the user asked for none
// (one of them set empty, or to cat).
func Command(lookup func(string) (string, bool)) string {
	cmd := "less"
	for _, name := range []string{"LBCTL_PAGER", "PAGER"} {
		if v, ok := lookup(name); ok {
			cmd = v
			break
		}
	}
	if c := strings.TrimSpace(cmd); c == "" || c == "cat" {
		return ""
	}
	return cmd
}

// Pager is a running pager.
type Pager struct {
	cmd *exec.Cmd
	in  io.WriteCloser
}

// Start runs the command line cmdline through sh with its output to
// stdout, adding LESS=FRX and LV=-c to env where they are not set.
func Start(cmdline string, stdout, stderr io.Writer, env []string) (*Pager, error) {
	c := exec.Command("sh", "-c", cmdline)
	c.Stdout, c.Stderr = stdout, stderr
	c.Env = withDefaults(env, "LESS=FRX", "LV=-c")
	in, err := c.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("pager: %w", err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("pager %s: %w", cmdline, err)
	}
	return &Pager{cmd: c, in: in}, nil
}

// Write writes to the pager. A pager the user quit early makes writes
// fail with EPIPE; Write then drops the rest, as the user has seen enough.
func (p *Pager) Write(b []byte) (int, error) {
	if _, err := p.in.Write(b); err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.EPIPE) {
		return 0, err
	}
	return len(b), nil
}

// Close ends the input and waits for the user to quit the pager.
func (p *Pager) Close() error {
	p.in.Close()
	if err := p.cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil // the pager's own status is not ours
		}
		return fmt.Errorf("pager: %w", err)
	}
	return nil
}

// withDefaults adds each NAME=VALUE of defs to env unless env sets NAME.
func withDefaults(env []string, defs ...string) []string {
	out := append([]string(nil), env...)
	for _, d := range defs {
		name, _, _ := strings.Cut(d, "=")
		set := false
		for _, e := range env {
			if strings.HasPrefix(e, name+"=") {
				set = true
				break
			}
		}
		if !set {
			out = append(out, d)
		}
	}
	return out
}
