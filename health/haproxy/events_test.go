package haproxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseEvent(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Event
		err  string
	}{
		{in: "<129>1 2026-12-02T12:44:53.067615+00:00 - v001 21955 - - Server be/s1 is DOWN, reason: Layer4 connection problem, 0 active and 0 backup servers left.\n",
			want: Event{Tag: "v001", PID: 21955, Severity: 1, Text: "Server be/s1 is DOWN, reason: Layer4 connection problem, 0 active and 0 backup servers left."}},
		{in: "<128>1 2026-12-02T12:44:53.206424+00:00 lb1 192.0.2.10 7 - - backend be has no server available!",
			want: Event{Tag: "192.0.2.10", PID: 7, Severity: 0, Text: "backend be has no server available!"}},
		{in: "<133>1 - - v - - - x", want: Event{Tag: "v", Severity: 5, Text: "x"}},
		{in: "", err: "no priority"},
		{in: "<129>Dec  2 12:44:53 haproxy[1]: Server be/s1 is DOWN", err: "not RFC 5424"},
		{in: "<129>2 - - v 1 - - x", err: "version"},
		{in: "<999>1 - - v 1 - - x", err: "priority"},
		{in: "<129>1 - - - 1 - - x", err: "no tag"},
	} {
		got, err := ParseEvent([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseEvent(%q): error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseEvent(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// TestEventsFromHAProxy runs a real HAProxy with the log lines the renderer
// writes (notice and above to the events socket, tagged) and a backend
// server that refuses connections: the DOWN of its server and the backend
// without servers arrive tagged with the VIP, and no traffic log does
// (a request through the frontend is logged at info).
func TestEventsFromHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed (make deps installs it)")
	}
	dir := t.TempDir()
	evs, err := ListenEvents(filepath.Join(dir, "events.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer evs.Close()
	if fi, err := os.Stat(filepath.Join(dir, "events.sock")); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("events socket: %v %v, want mode 0666", fi, err)
	}
	got := make(chan Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- evs.Run(ctx, func(e Event) { got <- e }, func(err error) { t.Errorf("bad event: %v", err) })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	}()

	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := down.Addr().String()
	down.Close()
	fe, _ := net.Listen("tcp", "127.0.0.1:0")
	feAddr := fe.Addr().String()
	fe.Close()
	cfg := fmt.Sprintf(`global
  log stdout format raw local0
  log unix@%s len 1024 format rfc5424 local0 notice
  log-tag vip-a
defaults
  log global
  mode http
  option httplog
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s
  http-request return status 200 if { path /ok }
  default_backend be
backend be
  server s1 %s check inter 100ms fall 1 rise 1
`, filepath.Join(dir, "events.sock"), feAddr, downAddr)
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	if out, err := exec.Command(bin, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-db", "-f", cfgPath)
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd.Stdout = stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	want := []string{"Server be/s1 is DOWN", "backend be has no server available!"}
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case e := <-got:
			if e.Tag != "vip-a" || e.PID != cmd.Process.Pid {
				t.Errorf("event %+v: want tag vip-a, pid %d", e, cmd.Process.Pid)
			}
			if !strings.HasPrefix(e.Text, want[0]) {
				t.Fatalf("event %q, want %q next", e.Text, want[0])
			}
			want = want[1:]
		case <-timeout:
			t.Fatalf("no event %q from HAProxy", want[0])
		}
	}
	// A request is a traffic log (info): it must not reach the socket.
	for range 3 {
		if c, err := net.Dial("tcp", feAddr); err == nil {
			fmt.Fprintf(c, "GET /ok HTTP/1.0\r\n\r\n")
			c.Read(make([]byte, 64))
			c.Close()
		}
	}
	select {
	case e := <-got:
		t.Errorf("after requests: event %+v, want none", e)
	case <-time.After(300 * time.Millisecond):
	}
	// ... while the log to stdout has them (or this proved nothing).
	if out, _ := os.ReadFile(stdout.Name()); !strings.Contains(string(out), "GET /ok") {
		t.Errorf("HAProxy's stdout log has no request:\n%s", out)
	}
}
