//go:build linux

package bpf

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	vip4 = netip.MustParseAddrPort("192.0.2.10:8080")
	vip6 = netip.MustParseAddrPort("[2001:db8::10]:8443")
)

// TestIteratorListsNamespaceListeners: the iterator, opened for a fresh
// namespace, lists exactly the listeners made there, with their backlog
// limit and namespace, and none of the host's.
func TestIteratorListsNamespaceListeners(t *testing.T) {
	p := mustLoad(t)
	ns := newNetNS(t, 0)
	ns.listen(t, vip4, 16)
	ns.listen(t, vip6, 7)

	got, err := p.Listeners(ns.fd())
	if err != nil {
		t.Fatal(err)
	}
	got = byAddr(got)
	if len(got) != 2 {
		t.Fatalf("listeners in namespace: got %v, want exactly %s and %s", got, vip4, vip6)
	}
	want := []struct {
		ap  netip.AddrPort
		max uint32
	}{{vip4, 16}, {vip6, 7}}
	for i, w := range want {
		l := got[i]
		if l.Addr != w.ap || l.MaxBacklog != w.max || l.Backlog != 0 || l.NetNS != ns.inode || l.Cookie == 0 {
			t.Errorf("listener %d: got %+v, want %s max backlog %d, backlog 0, netns %d, a cookie", i, l, w.ap, w.max, ns.inode)
		}
	}

	// The host's own listeners are not in the namespace's list, and the
	// namespace's are not in the host's.
	host, err := p.Listeners(-1)
	if err != nil {
		t.Fatal(err)
	}
	hostNS, _ := NetNSInode(-1)
	for _, h := range host {
		if h.NetNS != hostNS {
			t.Errorf("host list has a socket of netns %d: %+v", h.NetNS, h)
		}
		for _, l := range got {
			if h.Cookie == l.Cookie {
				t.Errorf("namespace listener %s also listed for the host", l.Addr)
			}
		}
	}
	t.Logf("host has %d listeners, namespace %d (netns %d)", len(host), len(got), ns.inode)
}

// TestAcceptQueue: connections that are never accepted show up as the
// accept-queue length, through the iterator and through sock_diag.
func TestAcceptQueue(t *testing.T) {
	p := mustLoad(t)
	ns := newNetNS(t, 0)
	ns.listen(t, vip4, 8)
	const n = 5
	ns.connect(t, vip4, n)

	var got []Listener
	ok := waitFor(time.Second, func() bool {
		var err error
		got, err = p.Listeners(ns.fd())
		return err == nil && len(got) == 1 && got[0].Backlog == n
	})
	if !ok {
		t.Fatalf("iterator: got %+v, want one listener %s with backlog %d", got, vip4, n)
	}
	if got[0].MaxBacklog != 8 || got[0].Saturated() {
		t.Errorf("iterator: got %+v, want max backlog 8, not saturated", got[0])
	}
	diag, err := SockDiag{}.Listeners(ns.fd())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(diag, got) {
		t.Errorf("sock_diag %+v != iterator %+v", diag, got)
	}

	// Fill it: the kernel queues backlog+1 connections at most.
	ns.connect(t, vip4, 8+1-n)
	if !waitFor(time.Second, func() bool {
		got, err = p.Listeners(ns.fd())
		return err == nil && len(got) == 1 && got[0].Saturated()
	}) {
		t.Fatalf("iterator: got %+v, want a saturated accept queue", got)
	}
	t.Logf("saturated: backlog %d of %d", got[0].Backlog, got[0].MaxBacklog)
}

// TestSockDiagMatchesIterator: the fallback returns the same set, field for
// field (cookie and namespace included).
func TestSockDiagMatchesIterator(t *testing.T) {
	p := mustLoad(t)
	ns := newNetNS(t, 0)
	ns.listen(t, vip4, 16)
	ns.listen(t, vip6, 7)
	ns.listen(t, netip.MustParseAddrPort("0.0.0.0:9000"), 4)
	ns.listen(t, netip.MustParseAddrPort("[::]:9001"), 3)

	it, err := p.Listeners(ns.fd())
	if err != nil {
		t.Fatal(err)
	}
	diag, err := SockDiag{}.Listeners(ns.fd())
	if err != nil {
		t.Fatal(err)
	}
	it, diag = byAddr(it), byAddr(diag)
	if len(it) != 4 || !slices.Equal(it, diag) {
		t.Fatalf("iterator and sock_diag differ:\n iter %+v\n diag %+v", it, diag)
	}
}

// nextEvent waits up to d for an event.
func nextEvent(t *testing.T, p *Probe, d time.Duration) (Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-p.Events():
		if !ok {
			t.Fatal("events channel closed")
		}
		return ev, true
	case <-time.After(d):
		return Event{}, false
	}
}

// TestEvents: closing a watched listener sends Up=false within 50 ms,
// opening one Up=true; unwatched ports and namespaces send nothing.
func TestEvents(t *testing.T) {
	p := mustLoad(t)
	ns := newNetNS(t, 0)
	if err := p.Watch([]netip.AddrPort{vip4, vip6}, ns.inode); err != nil {
		t.Fatal(err)
	}

	fd := ns.listen(t, vip4, 16)
	ev, ok := nextEvent(t, p, time.Second)
	if !ok || !ev.Up || ev.Addr != vip4 || ev.NetNS != ns.inode || ev.Cookie == 0 {
		t.Fatalf("after listen: got %+v (received %v), want Up=true %s netns %d", ev, ok, vip4, ns.inode)
	}
	// A wrong clock base (boot time against wall time) is off by hours; a busy
	// machine may deliver the event late, so only a gross error fails.
	if d := time.Since(ev.Time); d < 0 || d > time.Minute {
		t.Errorf("event time %v is %v away from now", ev.Time, d)
	}
	cookie := ev.Cookie

	// Unwatched port: nothing.
	other := ns.listen(t, netip.MustParseAddrPort("192.0.2.10:9090"), 4)
	unix.Close(other)
	if ev, ok := nextEvent(t, p, 100*time.Millisecond); ok {
		t.Fatalf("unwatched port sent %+v", ev)
	}

	start := Monotonic()
	unix.Close(fd)
	ev, ok = nextEvent(t, p, time.Second)
	lat := Monotonic() - start
	if !ok || ev.Up || ev.Addr != vip4 || ev.Cookie != cookie {
		t.Fatalf("after close: got %+v (received %v), want Up=false %s cookie %d", ev, ok, vip4, cookie)
	}
	t.Logf("close -> event in user space: %v (kernel: %v after close call)", lat, ev.Mono-start)

	// IPv6 too.
	fd6 := ns.listen(t, vip6, 3)
	if ev, ok := nextEvent(t, p, time.Second); !ok || !ev.Up || ev.Addr != vip6 {
		t.Fatalf("after listen on %s: got %+v (received %v)", vip6, ev, ok)
	}
	unix.Close(fd6)
	if ev, ok := nextEvent(t, p, time.Second); !ok || ev.Up || ev.Addr != vip6 {
		t.Fatalf("after close of %s: got %+v (received %v)", vip6, ev, ok)
	}

	// Same address in another namespace: not watched.
	ns2 := newNetNS(t, 0)
	unix.Close(ns2.listen(t, vip4, 4))
	if ev, ok := nextEvent(t, p, 100*time.Millisecond); ok {
		t.Fatalf("listener in another namespace sent %+v", ev)
	}

	// netns 0 watches every namespace; replacing the set drops vip4 and
	// vip6. (An unusual port: other suites' namespaces may use vip4.)
	anyNS := netip.MustParseAddrPort("192.0.2.10:47123")
	if err := p.Watch([]netip.AddrPort{anyNS}, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(ns2.listen(t, anyNS, 4))
	for _, up := range []bool{true, false} {
		if ev, ok := nextEvent(t, p, time.Second); !ok || ev.Up != up || ev.NetNS != ns2.inode {
			t.Fatalf("wildcard watch: got %+v (received %v), want Up=%v netns %d", ev, ok, up, ns2.inode)
		}
	}
	unix.Close(ns.listen(t, vip6, 3))
	unix.Close(ns.listen(t, vip4, 3))
	if ev, ok := nextEvent(t, p, 100*time.Millisecond); ok {
		t.Fatalf("address dropped from the set sent %+v", ev)
	}
	if n, err := p.Dropped(); err != nil || n != 0 {
		t.Errorf("dropped events: %d, %v", n, err)
	}
}

// TestDiagSocketMatchesSockDiag: the kept-open socket lists what a
// socket per listing does, field for field, across many netlink
// datagrams (300 listeners, one with connections waiting), and a
// listing after a listener closed no longer has it.
func TestDiagSocketMatchesSockDiag(t *testing.T) {
	needRoot(t)
	ns := newNetNS(t, 0)
	var d *DiagSocket
	ns.do(t, func() (err error) {
		d, err = OpenDiagSocket()
		return err
	})
	defer d.Close()
	var last int
	for i := range 300 {
		last = ns.listen(t, netip.AddrPortFrom(vip4.Addr(), uint16(10000+i)), 8)
	}
	ns.listen(t, vip6, 7)
	ns.connect(t, netip.AddrPortFrom(vip4.Addr(), 10000), 3)
	for range 2 { // the second listing reuses the buffer
		got, err := d.Listeners(-1)
		if err != nil {
			t.Fatal(err)
		}
		want, err := SockDiag{}.Listeners(ns.fd())
		if err != nil {
			t.Fatal(err)
		}
		got, want = byAddr(got), byAddr(want)
		if len(got) != 301 || !slices.Equal(got, want) {
			t.Fatalf("kept socket: %d listeners, socket per listing: %d; first differing: %v",
				len(got), len(want), firstDiff(got, want))
		}
		if q := got[slices.IndexFunc(got, func(l Listener) bool { return l.Addr.Port() == 10000 })]; q.Backlog != 3 {
			t.Fatalf("listener with 3 connections waiting: %+v", q)
		}
	}
	if err := unix.Shutdown(last, unix.SHUT_RDWR); err != nil { // stops listening
		t.Fatal(err)
	}
	got, err := d.Listeners(-1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 300 || slices.ContainsFunc(got, func(l Listener) bool { return l.Addr.Port() == 10299 }) {
		t.Fatalf("after closing port 10299: %d listeners (want 300, without it)", len(got))
	}
}

func firstDiff(a, b []Listener) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%+v / %+v", a[i], b[i])
		}
	}
	return "none in the common length"
}

// TestStopSignals: a stop or continue signal sent to a process of the
// watched namespace is reported with its PID and signal; one sent to a
// process of another namespace, or another signal, is not.
func TestStopSignals(t *testing.T) {
	p := mustLoad(t)
	if p.Signals() == nil {
		t.Fatalf("stop-signal watcher: %v", p.SignalsErr())
	}
	ns := newNetNS(t, 0)
	if err := p.Watch(nil, ns.inode); err != nil {
		t.Fatal(err)
	}
	start := func(cmd *exec.Cmd) *os.Process {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process
	}
	inside := start(ns.command("sleep", "60"))
	outside := start(exec.Command("sleep", "60"))
	for _, s := range []struct {
		proc *os.Process
		sig  syscall.Signal
		want bool
	}{
		{outside, syscall.SIGSTOP, false},
		{inside, syscall.SIGWINCH, false}, // not a stop signal (sleep ignores it)
		{inside, syscall.SIGSTOP, true},
		{inside, syscall.SIGCONT, true},
		{inside, syscall.SIGTSTP, true},
		{outside, syscall.SIGCONT, false},
		{inside, syscall.SIGCONT, true},
	} {
		if err := s.proc.Signal(s.sig); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-p.Signals():
			if !s.want || got.PID != s.proc.Pid || got.Sig != s.sig {
				t.Fatalf("after %v to %d (reported: %v): got %+v", s.sig, s.proc.Pid, s.want, got)
			}
		case <-time.After(200 * time.Millisecond):
			if s.want {
				t.Fatalf("%v to %d in the watched namespace: no signal reported", s.sig, s.proc.Pid)
			}
		}
	}
}
