package haproxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	out := "# pxname,svname,qcur,status,weight\nfe,FRONTEND,,OPEN,\nbe_web,web1,0,UP,1\nbe_web,web2,0,DOWN,1\nbe_web,BACKEND,0,UP,1\nbe_mail,mx1,0,UP 1/2,1\nbe_mail,mx2,0,MAINT,1\n\n"
	s, err := parseStat(out)
	if err != nil {
		t.Fatal(err)
	}
	got := UpCount(s)
	if len(s) != 4 || got["be_web"] != 1 || got["be_mail"] != 1 {
		t.Fatalf("servers %+v up %v", s, got)
	}
}

// A checked server is not up before its first check completed: HAProxy
// shows it "UP 1/3" with check_status "* INI" at start.
func TestParseStatInitialCheck(t *testing.T) {
	out := "# pxname,svname,status,check_status\nbe,ghost1,UP 1/3,* INI\nbe,web1,UP,L4OK\nbe,web2,UP,* L4OK\nbe,web3,no check,\nbe,BACKEND,UP,\n"
	s, err := parseStat(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := UpCount(s)["be"]; got != 3 {
		t.Fatalf("servers %+v: %d up, want 3 (all but ghost1)", s, got)
	}
}

// TestParseStatQuoted: a quoted free-text field (last_chk with a comma)
// before or after the columns read gives the same servers as encoding/csv.
func TestParseStatQuoted(t *testing.T) {
	plain := "# pxname,svname,status,check_status,last_chk\nbe,web1,UP,L7OK,ok\nbe,web2,DOWN,L4CON,refused\n"
	quoted := "# pxname,svname,status,check_status,last_chk\nbe,web1,UP,L7OK,ok\nbe,web2,DOWN,L4CON,\"Layer4 connection problem, info: refused\"\n"
	a, err1 := parseStat(plain)
	b, err2 := parseStat(quoted)
	c, err3 := parseStatCSV(strings.TrimPrefix(plain, "# "))
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	if !slices.Equal(a, b) || !slices.Equal(a, c) || len(a) != 2 || a[1].CheckStatus != "L4CON" {
		t.Fatalf("split %+v, quoted %+v, csv %+v", a, b, c)
	}
	for _, bad := range []string{"", "\n", "# pxname,svname\nbe,web1\n"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

// TestStatsAgainstHAProxy runs a real HAProxy on loopback with one server
// up and one down and reads its stats socket.
func TestStatsAgainstHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed (make deps installs it)")
	}
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := down.Addr().String()
	down.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	cfg := fmt.Sprintf(`global
  stats socket %s mode 600 level admin
defaults
  mode tcp
  timeout connect 1s
  timeout client 5s
  timeout server 5s
backend be_test
  default-server check inter 100ms rise 1 fall 1
  server s_up %s
  server s_down %s
`, sock, up.Addr(), downAddr)
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	cmd := exec.Command(bin, "-db", "-f", cfgPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := Stats(context.Background(), sock)
		if err == nil {
			n := UpCount(s)
			if len(s) == 2 && n["be_test"] == 1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never showed one of two servers up: %+v %v", s, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
