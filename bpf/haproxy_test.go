//go:build linux

package bpf

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

const haproxyBin = "/usr/sbin/haproxy"

const haproxyConf = `global
	nbthread 1
defaults
	mode tcp
	timeout connect 1s
	timeout client 5s
	timeout server 5s
frontend fe
	bind 192.0.2.10:8080
	default_backend be
backend be
	server s1 127.0.0.1:9
`

// TestHAProxyKillEvent: SIGKILL of a real HAProxy listening on a watched
// address in a namespace produces Up=false; 20 trials, latency from kill(2)
// to the event in Go (and to the kernel's timestamp) reported as p50/p95/max.
func TestHAProxyKillEvent(t *testing.T) {
	if _, err := os.Stat(haproxyBin); err != nil {
		t.Skipf("needs %s (make deps): %v", haproxyBin, err)
	}
	p := mustLoad(t)
	ns := newNetNS(t, 0)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxyBin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v: %s", err, out)
	}
	if err := p.Watch([]netip.AddrPort{vip4}, ns.inode); err != nil {
		t.Fatal(err)
	}

	const trials = 20
	var user, kernel []time.Duration
	for i := range trials {
		cmd := ns.command(haproxyBin, "-db", "-f", cfg)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		reaped := false
		t.Cleanup(func() {
			if !reaped {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		ev, ok := nextEvent(t, p, 5*time.Second)
		if !ok || !ev.Up || ev.Addr != vip4 {
			t.Fatalf("trial %d: haproxy start: got %+v (received %v), want Up=true %s", i, ev, ok, vip4)
		}
		ls, err := p.Listeners(ns.fd())
		if err != nil || len(ls) != 1 || ls[0].Cookie != ev.Cookie {
			t.Fatalf("trial %d: listeners %+v (%v), want the socket of the event (cookie %d)", i, ls, err, ev.Cookie)
		}

		start := Monotonic()
		if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		ev, ok = nextEvent(t, p, time.Second)
		got := Monotonic()
		if !ok || ev.Up || ev.Addr != vip4 {
			t.Fatalf("trial %d: after SIGKILL: got %+v (received %v), want Up=false %s", i, ev, ok, vip4)
		}
		user = append(user, got-start)
		kernel = append(kernel, ev.Mono-start)
		cmd.Wait()
		reaped = true
	}
	slices.Sort(user)
	slices.Sort(kernel)
	t.Logf("SIGKILL -> event in Go, %d trials: p50 %v p95 %v max %v", trials, percentile(user, 50), percentile(user, 95), user[len(user)-1])
	t.Logf("SIGKILL -> kernel tracepoint:      p50 %v p95 %v max %v", percentile(kernel, 50), percentile(kernel, 95), kernel[len(kernel)-1])
	// The latency is a benchmark figure (docs/BENCHMARKS.md, make bench),
	// not asserted: a busy machine delays any process.
}
