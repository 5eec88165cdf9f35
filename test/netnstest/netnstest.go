// Package netnstest gives integration tests throwaway network namespaces:
// create a named namespace with lo up, connect two with a veth pair, run Go
// code inside one on a locked OS thread, and start or run processes inside
// one. Everything is removed in t.Cleanup, and the cleanup asserts that
// nothing is left: every started process reaped, no process still inside the
// namespace, and the namespace file under /run/netns gone.
//
// The helpers shell out to the ip binary (iproute2) to create namespaces and
// links; product code must not, which is why this lives under test/. Nothing
// here touches the host's own network: every change happens inside a
// namespace the test created.
package netnstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/internal/netns"
	"github.com/lbctl/lbctl/test/internal/nsprocs"
)

// NetNSDir is where ip(8) keeps named network namespaces.
const NetNSDir = "/run/netns"

var (
	probeOnce sync.Once
	probeErr  error
)

// RequireRoot skips the test unless it runs as root, the ip binary is
// installed and the kernel lets this process create network namespaces.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces (run `make test` as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip binary (iproute2) to create network namespaces")
	}
	probeOnce.Do(func() { probeErr = probeUnshare() })
	if probeErr != nil {
		t.Skipf("needs network namespaces: %v", probeErr)
	}
}

// probeUnshare checks that unshare(CLONE_NEWNET) works. It runs on a
// thread of its own which is discarded afterwards (the goroutine exits
// while still locked), so no thread of the process stays in the probe
// namespace.
func probeUnshare() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the runtime destroys the thread on exit.
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
	}
	return nil
}

// NS is a named network namespace made for one test.
type NS struct {
	// Name is the namespace's name under /run/netns (unique).
	Name string
	// Path is the namespace file, /run/netns/<Name>.
	Path string
	// Inode identifies the namespace (as in /proc/PID/ns/net).
	Inode uint64

	file *os.File
	t    testing.TB

	mu    sync.Mutex
	procs []*Proc
}

// New creates a network namespace named "lbt-<name>-<random>" with lo up
// and IPv6 duplicate address detection off.
// It is removed in t.Cleanup, after the processes started in it are killed
// and reaped; the cleanup fails the test if a process is still inside or
// the namespace file is still there.
func New(t testing.TB, name string) *NS {
	t.Helper()
	RequireRoot(t)
	full := fmt.Sprintf("lbt-%s-%06x", name, rand.Uint32()&0xffffff)
	if out, err := exec.Command("ip", "netns", "add", full).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", full, err, out)
	}
	ns := &NS{Name: full, Path: filepath.Join(NetNSDir, full), t: t}
	t.Cleanup(ns.remove)
	f, err := os.Open(ns.Path)
	if err != nil {
		t.Fatalf("open namespace %s: %v", full, err)
	}
	ns.file = f
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatalf("stat namespace %s: %v", full, err)
	}
	ns.Inode = st.Ino
	ns.IP(t, "link", "set", "lo", "up")
	// Without duplicate address detection, IPv6 addresses (link-local ones
	// included) are usable as soon as they exist; a test that needs DAD can
	// turn it on per interface (net.ipv6.conf.<dev>.accept_dad=1).
	if err := ns.Do(func() error {
		for _, conf := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/accept_dad", []byte("0"), 0); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("namespace %s: turn off IPv6 DAD: %v", full, err)
	}
	return ns
}

// Fd is an open file descriptor of the namespace, valid until cleanup (for
// netlink.Config.NetNS, nftables.WithNetNSFd and the like).
func (ns *NS) Fd() int { return int(ns.file.Fd()) }

// remove kills and reaps leftover processes, checks nothing else is inside
// and deletes the namespace.
func (ns *NS) remove() {
	t := ns.t
	ns.mu.Lock()
	procs := ns.procs
	ns.mu.Unlock()
	for _, p := range procs {
		if err := p.stop(10 * time.Second); err != nil {
			t.Errorf("namespace %s: %v", ns.Name, err)
		}
	}
	if ns.Inode != 0 {
		for _, pid := range nsprocs.PIDsIn(ns.Inode) {
			t.Errorf("namespace %s: process %d is still inside at cleanup (killed)", ns.Name, pid)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	if ns.file != nil {
		ns.file.Close()
	}
	if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
	}
	if _, err := os.Stat(ns.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace file %s still there after cleanup (stat: %v)", ns.Path, err)
	}
}

// Do runs fn with the calling goroutine's work moved into the namespace: on
// a fresh goroutine locked to its OS thread, setns into the namespace, fn,
// setns back. Sockets fn opens belong to the namespace and may be used from
// any goroutine afterwards; goroutines fn starts do not run in the
// namespace. fn must not call t.Fatal (it runs on another goroutine).
func (ns *NS) Do(fn func() error) error { return netns.DoPath(ns.Path, fn) }

// spawner is one goroutine locked to its OS thread for the life of the test
// binary; every child is forked from it. Pdeathsig fires when the forking
// thread exits, so children must not be forked from threads the runtime may
// destroy (any thread a goroutine leaves locked); this one never exits.
var (
	spawnOnce sync.Once
	spawnReq  chan func()
)

// spawn starts cmd from the spawner thread while it is inside ns.
func (ns *NS) spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked
			for f := range spawnReq {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReq <- func() {
		back, err := netns.Switch(ns.Fd())
		if err != nil {
			errc <- fmt.Errorf("namespace %s: %w", ns.Name, err)
			return
		}
		serr := cmd.Start()
		if err := back(); err != nil {
			// The spawner is now in the wrong namespace for good: fail loudly.
			panic(fmt.Sprintf("netnstest: namespace %s: %v", ns.Name, err))
		}
		errc <- serr
	}
	return <-errc
}

// Proc is a process started inside a namespace.
type Proc struct {
	Cmd *exec.Cmd
	PID int

	out  *syncBuffer
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// Start starts argv inside the namespace (forked from a thread in the
// namespace, so the child and its descendants live there). Its combined
// output is kept (Output). In cleanup it is killed by PID with SIGKILL if
// still running and always reaped; the cleanup fails the test if it is not
// reaped within 10 s.
func (ns *NS) Start(t testing.TB, argv ...string) *Proc {
	t.Helper()
	if len(argv) == 0 {
		t.Fatal("Start: empty command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := ns.spawn(cmd); err != nil {
		t.Fatalf("start %q in %s: %v", argv, ns.Name, err)
	}
	p := &Proc{Cmd: cmd, PID: cmd.Process.Pid, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	ns.mu.Lock()
	ns.procs = append(ns.procs, p)
	ns.mu.Unlock()
	return p
}

// Output is the process's combined stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to timeout for the process to exit and returns its result.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("process %d (%s) still running after %v", p.PID, p.Cmd.Path, timeout)
	}
}

// Signal sends sig to the process by PID if it has not been reaped yet.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("process %d already exited", p.PID)
	default:
	}
	// Not reaped yet, so the PID still names our child (at worst a zombie).
	return unix.Kill(p.PID, sig)
}

// stop kills the process if needed and waits until it is reaped.
func (p *Proc) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = unix.Kill(p.PID, unix.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("process %d (%s) not reaped %v after SIGKILL", p.PID, p.Cmd.Path, timeout)
	}
}

// ExecTimeout bounds every command run by Exec.
const ExecTimeout = 60 * time.Second

// Exec runs argv inside the namespace to completion and returns its
// combined output; a failure or a run longer than ExecTimeout fails the
// test.
func (ns *NS) Exec(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := ns.ExecErr(argv...)
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(argv, " "), ns.Name, err, out)
	}
	return out
}

// ExecErr is Exec returning the error instead of failing the test.
func (ns *NS) ExecErr(argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("exec: empty command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), ExecTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := ns.spawn(cmd); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return out.String(), err
}

// IP runs `ip -n <ns> args...` and returns its output, failing the test on
// error.
func (ns *NS) IP(t testing.TB, args ...string) string {
	t.Helper()
	argv := append([]string{"-n", ns.Name}, args...)
	out, err := exec.Command("ip", argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// AddAddr adds an address ("192.0.2.1/24", "2001:db8::1/64") to dev in the
// namespace. IPv6 addresses skip duplicate address detection so they are
// usable at once.
func (ns *NS) AddAddr(t testing.TB, dev, prefix string) {
	t.Helper()
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		t.Fatalf("address %q: %v", prefix, err)
	}
	args := []string{"addr", "add", p.String(), "dev", dev}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	ns.IP(t, args...)
}

// Link is one veth pair between two namespaces.
type Link struct {
	// A and B are the interface names in the first and second namespace.
	A, B string
}

// Veth connects namespaces a and b with a veth pair, sets both ends up and
// adds the addresses: aAddr and bAddr are comma-separated prefixes such as
// "198.51.100.1/24,2001:db8:1::1/64" (empty for none). The pair goes away
// with the namespaces.
func Veth(t testing.TB, a *NS, aAddr string, b *NS, bAddr string) Link {
	t.Helper()
	id := rand.Uint32() & 0xffffff
	l := Link{A: fmt.Sprintf("lbv%06xa", id), B: fmt.Sprintf("lbv%06xb", id)}
	if out, err := exec.Command("ip", "link", "add", l.A, "netns", a.Name,
		"type", "veth", "peer", "name", l.B, "netns", b.Name).CombinedOutput(); err != nil {
		t.Fatalf("create veth %s-%s between %s and %s: %v: %s", l.A, l.B, a.Name, b.Name, err, out)
	}
	for _, end := range []struct {
		ns    *NS
		dev   string
		addrs string
	}{{a, l.A, aAddr}, {b, l.B, bAddr}} {
		for _, p := range strings.Split(end.addrs, ",") {
			if p = strings.TrimSpace(p); p != "" {
				end.ns.AddAddr(t, end.dev, p)
			}
		}
		end.ns.IP(t, "link", "set", end.dev, "up")
	}
	// Until the kernel's link watcher has marked both ends operationally up
	// (it batches events for up to a second) the device drops every packet.
	deadline := time.Now().Add(5 * time.Second)
	for _, end := range []struct {
		ns  *NS
		dev string
	}{{a, l.A}, {b, l.B}} {
		for !strings.Contains(end.ns.IP(t, "-o", "link", "show", "dev", end.dev), "state UP") {
			if time.Now().After(deadline) {
				t.Fatalf("veth %s in %s not up after 5 s", end.dev, end.ns.Name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return l
}

// syncBuffer is a bytes.Buffer safe for concurrent Write and String.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
