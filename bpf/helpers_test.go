//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needRoot skips tests that create namespaces or load eBPF.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and loads eBPF (CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON)")
	}
}

// mustLoad loads the committed objects or skips when the kernel or the
// privileges do not allow it.
func mustLoad(t testing.TB) *Probe {
	t.Helper()
	needRoot(t)
	p, err := Load()
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("needs CAP_BPF, CAP_PERFMON and a kernel with BTF (>= 5.12): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// testNS is a network namespace that lives as long as the test holds fd.
// It is never bind-mounted, so nothing is left behind if the test dies.
type testNS struct {
	f     *os.File
	inode uint64
}

func (n *testNS) fd() int { return int(n.f.Fd()) }

// newNetNS creates a network namespace with lo up and the test addresses
// 192.0.2.10/32 and 2001:db8::10/128 on lo. With childEhash > 0 it is made
// from an intermediate namespace whose net.ipv4.tcp_child_ehash_entries is
// childEhash, so it gets its own small established hash (the host's sysctl is
// not touched).
func newNetNS(t testing.TB, childEhash int) *testNS {
	t.Helper()
	type result struct {
		f   *os.File
		err error
	}
	res := make(chan result, 1)
	go func() {
		// The thread never returns to its namespace: it stays locked and
		// the runtime discards it when this goroutine ends.
		runtime.LockOSThread()
		if childEhash > 0 {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				res <- result{err: fmt.Errorf("unshare: %w", err)}
				return
			}
			if err := os.WriteFile("/proc/sys/net/ipv4/tcp_child_ehash_entries", []byte(fmt.Sprint(childEhash)), 0); err != nil {
				res <- result{err: fmt.Errorf("set tcp_child_ehash_entries: %w", err)}
				return
			}
		}
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			res <- result{err: fmt.Errorf("unshare: %w", err)}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		res <- result{f, err}
	}()
	r := <-res
	if r.err != nil {
		t.Fatalf("create network namespace: %v", r.err)
	}
	ns := &testNS{f: r.f}
	t.Cleanup(func() { ns.f.Close() })
	var err error
	if ns.inode, err = NetNSInode(ns.fd()); err != nil {
		t.Fatal(err)
	}
	ns.run(t, "ip", "link", "set", "lo", "up")
	ns.run(t, "ip", "addr", "add", "192.0.2.10/32", "dev", "lo")
	ns.run(t, "ip", "addr", "add", "2001:db8::10/128", "dev", "lo", "nodad")
	return ns
}

// command returns cmd running inside the namespace through nsenter, which
// execs it: the process's PID is the command's.
func (n *testNS) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=/proc/self/fd/3", name}, args...)...)
	cmd.ExtraFiles = []*os.File{n.f}
	return cmd
}

func (n *testNS) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := n.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// do runs fn on a thread inside the namespace; sockets created there stay
// in it.
func (n *testNS) do(t testing.TB, fn func() error) {
	t.Helper()
	if err := inNetNS(n.fd(), fn); err != nil {
		t.Fatal(err)
	}
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if ap.Addr().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// listen opens a TCP listener on ap inside the namespace with the given
// listen(2) backlog and returns its fd (closed at cleanup unless already).
func (n *testNS) listen(t testing.TB, ap netip.AddrPort, backlog int) int {
	t.Helper()
	var fd int
	n.do(t, func() error {
		family, sa := sockaddr(ap)
		var err error
		if fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind %s: %w", ap, err)
		}
		return unix.Listen(fd, backlog)
	})
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// connect opens n client connections to ap from inside the namespace and
// never accepts them; they are closed at cleanup.
func (n *testNS) connect(t testing.TB, ap netip.AddrPort, count int) {
	t.Helper()
	n.do(t, func() error {
		for range count {
			family, sa := sockaddr(ap)
			fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			t.Cleanup(func() { unix.Close(fd) })
			if err := unix.Connect(fd, sa); err != nil {
				return fmt.Errorf("connect %s: %w", ap, err)
			}
		}
		return nil
	})
}

// byAddr sorts listeners for comparison.
func byAddr(ls []Listener) []Listener {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b Listener) int { return a.Addr.Compare(b.Addr) })
	return ls
}

// waitFor polls cond every millisecond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return cond()
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1)*p/100 + 0.5)
	return sorted[i]
}
