//go:build linux

package systemdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

func TestInitScriptMasksAndIsolates(t *testing.T) {
	s := initScript("lbt-x", []string{"a.service", "b c.service"})
	for _, want := range []string{
		"mount --make-rprivate /",
		"mount -t tmpfs -o mode=0755,size=512m tmpfs /run",
		"upperdir=/run/lbtest/$d.upper",
		"mount -o remount,bind,ro /sys",
		"mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup",
		"ln -sf /dev/null /run/systemd/system/'a.service'",
		"ln -sf /dev/null /run/systemd/system/'b c.service'",
		"export container='lbt-x'",
		"exec /lib/systemd/systemd --system",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q", want)
		}
	}
}

// TestStartStop boots systemd, checks it is PID 1 of an isolated world,
// then stops it and checks every process and the cgroup are gone.
func TestStartStop(t *testing.T) {
	start := time.Now()
	sd := Start(t, Options{Name: "lbt-sdt"})
	t.Logf("boot to running: %v", time.Since(start).Round(time.Millisecond))

	if got := strings.TrimSpace(sd.Run(t, "cat", "/proc/1/comm")); got != "systemd" {
		t.Fatalf("PID 1 inside is %q, want systemd", got)
	}
	if got := strings.TrimSpace(sd.Run(t, "hostname")); got != sd.Name() {
		t.Errorf("hostname inside %q, want %q", got, sd.Name())
	}
	host, _ := os.Hostname()
	if host == sd.Name() {
		t.Errorf("host name changed to %q", host)
	}
	// Writes to /etc inside stay inside.
	sd.WriteFile(t, "/etc/lbtest-"+sd.Name(), []byte("x"), 0o644)
	if _, err := os.Stat("/etc/lbtest-" + sd.Name()); err == nil {
		t.Fatalf("write to /etc inside the namespace reached the host")
	}
	if got := sd.Run(t, "cat", "/etc/lbtest-"+sd.Name()); got != "x" {
		t.Errorf("file written through RootPath reads %q inside", got)
	}
	// Its own network namespace: only lo.
	links := sd.Run(t, "ip", "-o", "link")
	if n := strings.Count(links, "\n"); n != 1 || !strings.Contains(links, "lo:") {
		t.Errorf("network namespace has other links than lo:\n%s", links)
	}
	if out := sd.Run(t, "systemctl", "is-active", "systemd-journald.service"); strings.TrimSpace(out) != "active" {
		t.Errorf("journald %q", out)
	}

	// Stop explicitly and check what Cleanup checks, from here.
	procs := sd.procs()
	if len(procs) < 2 {
		t.Fatalf("found %d processes in the cgroup, want systemd, journald, unshare", len(procs))
	}
	sd.Stop(t)
	for _, p := range procs {
		if procStart(p.pid) == p.start {
			t.Errorf("pid %d alive after Stop", p.pid)
		}
	}
	if _, err := os.Stat(sd.cgroup); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup %s: %v after Stop", sd.cgroup, err)
	}
}

// TestRunInside runs a go-systemd client inside the PID namespace and
// checks what it saw; it also shows that a client outside the PID
// namespace cannot use the same socket.
func TestRunInside(t *testing.T) {
	sd := Start(t, Options{Name: "lbt-sdt"})
	var got insideResult
	RunInside(t, sd, "TestHelperListUnits", map[string]string{"LBTEST_WANT": "init.scope"}, &got)
	if got.State != "active" || got.Units < 10 || got.PID <= 1 || got.PID > 10000 {
		t.Errorf("inside saw %+v; want init.scope active, >=10 units, a PID of the namespace", got)
	}
	if got.Hostname != sd.Name() {
		t.Errorf("inside hostname %q, want %q", got.Hostname, sd.Name())
	}

	// From the host PID namespace, through the same socket file.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := sdbus.NewConnection(func() (*godbus.Conn, error) {
		c, err := godbus.Dial("unix:path="+sd.RootPath("/run/systemd/private"), godbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := c.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	if err == nil {
		_, err = conn.ListUnitsContext(ctx)
		conn.Close()
	}
	t.Logf("D-Bus from outside the PID namespace: %v", err)
	if err == nil {
		t.Logf("note: a client outside the PID namespace worked on this kernel/systemd")
	}
}

type insideResult struct {
	Units    int
	State    string
	PID      int
	Hostname string
}

func TestHelperListUnits(t *testing.T) {
	SkipUnlessInside(t)
	conn, err := sdbus.NewSystemdConnectionContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	units, err := conn.ListUnitsContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p, err := conn.GetUnitPropertyContext(t.Context(), os.Getenv("LBTEST_WANT"), "ActiveState")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := os.Hostname()
	Emit(t, insideResult{Units: len(units), State: strings.Trim(p.Value.String(), `"`), PID: os.Getpid(), Hostname: h})
}

// TestInNetNS listens inside the namespace from the test process and
// connects from inside with a command.
func TestInNetNS(t *testing.T) {
	sd := Start(t, Options{Name: "lbt-sdt"})
	sd.Run(t, "ip", "link", "set", "lo", "up")
	var ln net.Listener
	if err := sd.InNetNS(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			fmt.Fprint(c, "hello from the test process\n")
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	out := sd.Run(t, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d; cat <&3", port))
	if out != "hello from the test process\n" {
		t.Errorf("got %q", out)
	}
	// The host has no such listener.
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("listener created in the namespace is reachable from the host")
	}
}
