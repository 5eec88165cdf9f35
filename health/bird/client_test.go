package bird

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// step is one command the scripted server expects and the literal reply it
// sends (a testdata file name, or the reply text itself when it contains a
// newline). An empty reply means: never answer.
type step struct{ cmd, reply string }

// scriptedBIRD serves BIRD's greeting and then the steps, in order, on one
// connection, and records the commands it received.
type scriptedBIRD struct {
	path string
	mu   sync.Mutex
	got  []string
	done chan struct{}
}

func serveScript(t *testing.T, steps ...step) *scriptedBIRD {
	t.Helper()
	dir := t.TempDir()
	s := &scriptedBIRD{path: filepath.Join(dir, "bird.ctl"), done: make(chan struct{})}
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); <-s.done })
	load := func(r string) string {
		if strings.Contains(r, "\n") {
			return r
		}
		b, err := os.ReadFile(filepath.Join("testdata", r))
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
	greeting := load("greeting.txt")
	for i := range steps {
		if steps[i].reply != "" {
			steps[i].reply = load(steps[i].reply)
		}
	}
	go func() {
		defer close(s.done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(greeting))
		r := bufio.NewReader(c)
		for _, st := range steps {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.TrimSuffix(line, "\n")
			s.mu.Lock()
			s.got = append(s.got, cmd)
			s.mu.Unlock()
			if cmd != st.cmd {
				t.Errorf("server got %q, want %q", cmd, st.cmd)
				return
			}
			if st.reply == "" {
				r.ReadString('\n') // hold the connection until the client closes it
				return
			}
			c.Write([]byte(st.reply))
		}
		r.ReadString('\n')
	}()
	return s
}

func (s *scriptedBIRD) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func dialScript(t *testing.T, s *scriptedBIRD) *Client {
	t.Helper()
	c, err := Dial(context.Background(), s.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientQueries(t *testing.T) {
	s := serveScript(t,
		step{"show route protocol vips4", "lb_show_route_protocol_vips4.txt"},
		step{"show route export rr1", "lb_show_route_export_rr1.txt"},
		step{"show protocols", "lb_show_protocols.txt"},
		step{"show route table master4", "1007-Table master4:\n 198.51.100.0/24      unicast [direct1 16:26:12.234] * (240)\n \tdev vb0\n0000 \n"},
		step{"disable vips4", "lb_disable_vips4.txt"},
		step{"enable vips4", "lb_enable_vips4.txt"},
		step{"show route protocol vips4", "lb_show_route_protocol_vips4_empty.txt"},
	)
	ctx := context.Background()
	c := dialScript(t, s)
	if c.Version() != "BIRD 2.0.12" {
		t.Errorf("version %q", c.Version())
	}
	got, err := c.Routes(ctx, "vips4")
	if err != nil || !slices.Equal(got, prefixes(t, "192.0.2.10/32", "192.0.2.11/32")) {
		t.Errorf("Routes: %v %v", got, err)
	}
	got, err = c.Exported(ctx, "rr1")
	if err != nil || !slices.Equal(got, prefixes(t, "192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128")) {
		t.Errorf("Exported: %v %v", got, err)
	}
	ps, err := c.Protocols(ctx)
	if err != nil || len(ps) != 5 || !ps[4].Established() || ps[4].Name != "rr1" {
		t.Errorf("Protocols: %+v %v", ps, err)
	}
	got, err = c.Table(ctx, "master4")
	if err != nil || !slices.Equal(got, prefixes(t, "198.51.100.0/24")) {
		t.Errorf("Table: %v %v", got, err)
	}
	if err := c.Disable(ctx, "vips4"); err != nil {
		t.Error(err)
	}
	if err := c.Enable(ctx, "vips4"); err != nil {
		t.Error(err)
	}
	got, err = c.Routes(ctx, "vips4")
	if err != nil || got != nil {
		t.Errorf("empty Routes: %v %v", got, err)
	}
	if _, err := c.Routes(ctx, "vips4; configure"); err == nil {
		t.Error("bad protocol name accepted")
	}
	c.Close()
	want := []string{"show route protocol vips4", "show route export rr1", "show protocols", "show route table master4", "disable vips4", "enable vips4", "show route protocol vips4"}
	<-s.done
	if got := s.commands(); !slices.Equal(got, want) {
		t.Errorf("commands sent:\n%q\nwant\n%q", got, want)
	}
}

func TestClientConfigure(t *testing.T) {
	s := serveScript(t,
		step{"configure", "lb_configure.txt"},
		step{"configure", "lb_configure_in_progress.txt"},
		step{"show status", "synthetic_show_status_reconfiguring.txt"},
		step{"show status", "synthetic_show_status_reconfiguring.txt"},
		step{"show status", "lb_show_status.txt"},
		step{"configure", "0002-Reading configuration from /etc/bird/bird.conf\n0005 Reconfiguration already in progress, queueing new config\n"},
		step{"show status", "lb_show_status.txt"},
		step{"configure check", "lb_configure_check.txt"},
		step{"configure", "lb_configure_error.txt"},
		step{"configure", "0002-Reading configuration from /etc/bird/bird.conf\n0006 Reconfiguration ignored, shutting down\n"},
		step{"show route protocol nosuch", "lb_show_route_nosuch.txt"},
	)
	ctx := context.Background()
	c := dialScript(t, s)
	for i := range 3 {
		if err := c.Configure(ctx); err != nil {
			t.Fatalf("configure %d: %v", i, err)
		}
	}
	if err := c.CheckConfig(ctx); err != nil {
		t.Fatal(err)
	}
	err := c.Configure(ctx)
	var re *ReplyError
	if !errors.As(err, &re) || re.Code != CodeConfigFileError || re.Message != "/etc/bird/announce4.conf:3:7 Invalid IPv4 address 192.0.2.300" {
		t.Errorf("configure error: %v", err)
	}
	if err.Error() != "bird: configure: 8002 /etc/bird/announce4.conf:3:7 Invalid IPv4 address 192.0.2.300" {
		t.Errorf("error text %q", err)
	}
	if err := c.Configure(ctx); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("shutting down: %v", err)
	}
	_, err = c.Routes(ctx, "nosuch")
	if !errors.As(err, &re) || re.Code != CodeParseError {
		t.Errorf("unknown protocol: %v", err)
	}
	// A reply error leaves the connection usable.
	if _, err := c.Command(ctx, "show status"); errors.Is(err, ErrBroken) {
		t.Errorf("connection broken after a reply error: %v", err)
	}
}

func TestClientContextBreaksConnection(t *testing.T) {
	s := serveScript(t, step{"configure", ""})
	c := dialScript(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Configure(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	// The script never answers: only the context ended the call. The bound is
	// a guard against a hang, not a latency target.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v after a 50ms deadline", d)
	}
	if _, err := c.Routes(context.Background(), "vips4"); !errors.Is(err, ErrBroken) {
		t.Errorf("after interruption: %v, want ErrBroken", err)
	}

	// Cancellation (not a deadline) interrupts a blocked read as well.
	s = serveScript(t, step{"show protocols", ""})
	c = dialScript(t, s)
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := c.Protocols(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want canceled", err)
	}
}

func TestDialRejectsNonBIRD(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("SSH-2.0-OpenSSH\r\n"))
			c.Close()
		}
	}()
	if _, err := Dial(context.Background(), path); !errors.Is(err, ErrProtocol) {
		t.Errorf("got %v, want ErrProtocol", err)
	}
	if _, err := Dial(context.Background(), filepath.Join(dir, "missing.sock")); err == nil {
		t.Error("dial of a missing socket succeeded")
	}
}
