// Package push rolls a bundle out to the LB nodes from the admin's machine:
// over the system's ssh it runs `lbctl install -` on one node first (the
// canary), waits until that node reports every VIP healthy, and only then
// goes on to the others one at a time, stopping at the first failure — so a
// bad bundle never takes down every anycast node at once.
package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/lbctl/lbctl/nodeapi"
)

// Runner runs lbctl on a node.
type Runner interface {
	// Run runs `lbctl ARGS...` on host with stdin and returns its output.
	Run(ctx context.Context, host string, args []string, stdin []byte) (stdout []byte, err error)
}

// SSH runs commands through the system's ssh client (keys, known_hosts,
// jump hosts and the rest come from the admin's ssh configuration).
type SSH struct {
	// Command is the ssh command line before the host; default
	// ["ssh", "-o", "BatchMode=yes"].
	Command []string
	// Remote is the lbctl binary on the nodes; default "lbctl".
	Remote string
}

// Run implements Runner.
func (s SSH) Run(ctx context.Context, host string, args []string, stdin []byte) ([]byte, error) {
	argv := s.Command
	if len(argv) == 0 {
		argv = []string{"ssh", "-o", "BatchMode=yes"}
	}
	remote := s.Remote
	if remote == "" {
		remote = "lbctl"
	}
	quoted := []string{shellQuote(remote)}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	cmd := exec.CommandContext(ctx, argv[0], append(append(argv[1:], host, "--"), strings.Join(quoted, " "))...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", host, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Options of a rollout.
type Options struct {
	// Args are extra arguments for the remote lbctl commands (e.g.
	// --config FILE).
	Args []string
	// HealthTimeout bounds the wait for a node to report every VIP
	// healthy after its install; default 60 s.
	HealthTimeout time.Duration
	// Progress receives one line per step.
	Progress io.Writer
}

// NodeResult is what happened on one node.
type NodeResult struct {
	Host   string
	Status string // installed, failed, unhealthy, skipped
	Err    error
}

// Result of a rollout, in node order.
type Result struct {
	Nodes []NodeResult
}

// ErrStopped means the rollout stopped before the last node.
var ErrStopped = errors.New("rollout stopped")

// Push installs the bundle on hosts in order: the first is the canary.
func Push(ctx context.Context, bundle []byte, hosts []string, r Runner, opts Options) (*Result, error) {
	if len(hosts) == 0 {
		return nil, errors.New("push: no hosts")
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 60 * time.Second
	}
	say := func(format string, a ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format+"\n", a...)
		}
	}
	res := &Result{}
	for i, h := range hosts {
		role := "node"
		if i == 0 {
			role = "canary"
		}
		say("%s %s: installing", role, h)
		out, err := r.Run(ctx, h, append([]string{"install", "-"}, opts.Args...), bundle)
		if err != nil {
			res.Nodes = append(res.Nodes, NodeResult{Host: h, Status: "failed", Err: err})
			return skipRest(res, hosts[i+1:], say), fmt.Errorf("%s %s: install: %w; %w", role, h, err, ErrStopped)
		}
		say("%s %s: %s", role, h, strings.TrimSpace(string(out)))
		if err := waitHealthy(ctx, h, r, opts); err != nil {
			res.Nodes = append(res.Nodes, NodeResult{Host: h, Status: "unhealthy", Err: err})
			return skipRest(res, hosts[i+1:], say), fmt.Errorf("%s %s: %w; %w", role, h, err, ErrStopped)
		}
		say("%s %s: every VIP healthy", role, h)
		res.Nodes = append(res.Nodes, NodeResult{Host: h, Status: "installed"})
	}
	return res, nil
}

func skipRest(res *Result, rest []string, say func(string, ...any)) *Result {
	for _, h := range rest {
		say("node %s: not touched", h)
		res.Nodes = append(res.Nodes, NodeResult{Host: h, Status: "skipped"})
	}
	return res
}

// waitHealthy polls the node's status (nodeapi.Status, the contract of
// `lbctl status --json`) until every VIP is healthy.
func waitHealthy(ctx context.Context, host string, r Runner, opts Options) error {
	ctx, cancel := context.WithTimeout(ctx, opts.HealthTimeout)
	defer cancel()
	var last string
	for {
		out, err := r.Run(ctx, host, append([]string{"status", "--json"}, opts.Args...), nil)
		if err == nil {
			var st nodeapi.Status
			if err := json.Unmarshal(out, &st); err != nil {
				last = "status: " + err.Error()
			} else {
				var bad []string
				for _, v := range st.Unhealthy() {
					bad = append(bad, v.Name+" ("+strings.Join(v.Reasons, "; ")+")")
				}
				if len(bad) == 0 {
					return nil
				}
				last = "not healthy: " + strings.Join(bad, ", ")
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("health after install: %s", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
