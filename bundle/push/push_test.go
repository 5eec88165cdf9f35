package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeNodes records installs and answers status per host.
type fakeNodes struct {
	installs  []string
	failOn    string
	unhealthy string
}

func (f *fakeNodes) Run(_ context.Context, host string, args []string, stdin []byte) ([]byte, error) {
	switch args[0] {
	case "install":
		if string(stdin) != "BUNDLE" {
			return nil, errors.New("bundle not on stdin")
		}
		if host == f.failOn {
			return nil, errors.New("install failed: vip 192.0.2.10: haproxy -c: parse error")
		}
		f.installs = append(f.installs, host)
		return []byte("installed release 7"), nil
	case "status":
		healthy := host != f.unhealthy
		return []byte(fmt.Sprintf(`{"serial":7,"vips":[{"name":"192.0.2.10","healthy":%v,"reasons":["no listener"]}]}`, healthy)), nil
	}
	return nil, errors.New("unexpected command")
}

func TestPush(t *testing.T) {
	ctx := context.Background()
	hosts := []string{"lb1", "lb2", "lb3"}
	f := &fakeNodes{}
	res, err := Push(ctx, []byte("BUNDLE"), hosts, f, Options{})
	if err != nil || strings.Join(f.installs, ",") != "lb1,lb2,lb3" || res.Nodes[2].Status != "installed" {
		t.Fatalf("rollout: %v %v %+v", err, f.installs, res)
	}
	// A failing canary stops the rollout: the other nodes are untouched.
	f = &fakeNodes{failOn: "lb1"}
	res, err = Push(ctx, []byte("BUNDLE"), hosts, f, Options{})
	if !errors.Is(err, ErrStopped) || len(f.installs) != 0 || res.Nodes[1].Status != "skipped" {
		t.Fatalf("failed canary: %v %v %+v", err, f.installs, res)
	}
	// A canary that installs but does not get healthy stops it too.
	f = &fakeNodes{unhealthy: "lb1"}
	var progress bytes.Buffer
	_, err = Push(ctx, []byte("BUNDLE"), hosts, f, Options{HealthTimeout: 700 * time.Millisecond, Progress: &progress})
	if !errors.Is(err, ErrStopped) || strings.Join(f.installs, ",") != "lb1" || !strings.Contains(err.Error(), "no listener") {
		t.Fatalf("unhealthy canary: %v %v", err, f.installs)
	}
	if !strings.Contains(progress.String(), "node lb3: not touched") {
		t.Fatalf("progress:\n%s", progress.String())
	}
}

// TestSSHRunner runs the real SSH runner with a stand-in ssh command that
// executes the remote command line locally, checking quoting and stdin.
func TestSSHRunner(t *testing.T) {
	dir := t.TempDir()
	fakeSSH := filepath.Join(dir, "ssh")
	// Like ssh: the host, then "--", then one remote command line for sh.
	os.WriteFile(fakeSSH, []byte("#!/bin/sh\necho \"host=$1\" >&2\nshift 2\nexec sh -c \"$1\"\n"), 0o755)
	remote := filepath.Join(dir, "lbctl")
	os.WriteFile(remote, []byte("#!/bin/sh\nprintf '%s|' \"$@\"; cat\n"), 0o755)
	r := SSH{Command: []string{fakeSSH}, Remote: remote}
	out, err := r.Run(context.Background(), "lb1", []string{"install", "-", "--config", "/etc/lbctl/it's.yaml"}, []byte("DATA"))
	if err != nil || string(out) != "install|-|--config|/etc/lbctl/it's.yaml|DATA" {
		t.Fatalf("out %q err %v", out, err)
	}
}
