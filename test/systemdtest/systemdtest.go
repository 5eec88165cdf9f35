//go:build linux

package systemdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/internal/netns"
	"github.com/lbctl/lbctl/test/internal/cgroup"
	"github.com/lbctl/lbctl/test/internal/nsunits"
)

// Options configure Start.
type Options struct {
	// Name prefixes the cgroup and the container name; a random suffix is
	// added. Default "lbt-sd".
	Name string
	// Mask lists units to mask in addition to the default list.
	Mask []string
	// BootTimeout bounds the wait for "running"; default 30 s.
	BootTimeout time.Duration
}

// DefaultMask are the units masked in every namespaced systemd: those that
// would touch the host (nsunits.Host), and BIRD, which tests start
// themselves.
var DefaultMask = append(slices.Clone(nsunits.Host), "bird.service")

// Systemd is one systemd running as PID 1 in its own namespaces.
type Systemd struct {
	name     string
	cgroup   string // host path of its cgroup directory
	cmd      *exec.Cmd
	pid      int // host PID of systemd
	waitDone chan struct{}
	waitErr  error
	console  string // file with the launcher's and systemd's console output

	exeOnce sync.Once
	exePath string
	exeErr  error

	stopOnce sync.Once
}

// SkipUnlessRoot skips the test unless it runs as root on Linux with the
// tools the namespaced systemd needs.
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux: namespaced systemd")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs systemd as PID 1 in new namespaces")
	}
	for _, p := range []string{"/lib/systemd/systemd", "/usr/bin/unshare", "/usr/bin/nsenter"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s: %v", p, err)
		}
	}
}

// Start boots systemd in new namespaces and waits until it reports running
// (or degraded). Cleanup powers it off, removes its cgroup and fails the
// test if any of its processes, its cgroup or a mount of it is left.
func Start(t testing.TB, opts Options) *Systemd {
	t.Helper()
	SkipUnlessRoot(t)
	if opts.Name == "" {
		opts.Name = "lbt-sd"
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 30 * time.Second
	}
	root, err := cgroup.Root()
	if err != nil {
		t.Skipf("needs a cgroup2 hierarchy: %v", err)
	}
	s := &Systemd{name: fmt.Sprintf("%s-%08x", opts.Name, rand.Uint32()), waitDone: make(chan struct{})}
	s.cgroup = filepath.Join(root, s.name)
	if err := os.Mkdir(s.cgroup, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	cgfd, err := unix.Open(s.cgroup, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(s.cgroup)
		t.Fatalf("open cgroup: %v", err)
	}
	defer unix.Close(cgfd)

	s.console = filepath.Join(t.TempDir(), "console.log")
	console, err := os.Create(s.console)
	if err != nil {
		_ = os.Remove(s.cgroup)
		t.Fatal(err)
	}
	defer console.Close()

	s.cmd = exec.Command("unshare", "--pid", "--fork", "--mount", "--mount-proc", "--net", "--uts",
		"--cgroup", "--kill-child", "--", "/bin/sh", "-c", initScript(s.name, append(slices.Clone(DefaultMask), opts.Mask...)))
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	s.cmd.Stdin = nil
	s.cmd.Stdout, s.cmd.Stderr = console, console
	s.cmd.SysProcAttr = &syscall.SysProcAttr{
		UseCgroupFD: true,
		CgroupFD:    cgfd,
		// If the test binary dies, unshare dies, and --kill-child takes
		// the whole PID namespace with it.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := spawn(s.cmd); err != nil {
		_ = os.Remove(s.cgroup)
		t.Fatalf("start unshare: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.waitDone)
	}()
	t.Cleanup(func() { s.Stop(t) })

	deadline := time.Now().Add(opts.BootTimeout)
	if err := s.findInit(deadline); err != nil {
		t.Fatalf("systemd did not start: %v\nconsole:\n%s", err, s.Console())
	}
	if err := s.waitRunning(deadline); err != nil {
		t.Fatalf("systemd did not boot: %v\nconsole:\n%s", err, s.Console())
	}
	return s
}

// Pdeathsig fires when the thread that forked the child exits, and the Go
// runtime destroys any thread a goroutine leaves locked (InNetNS does when
// it cannot switch back). So every launcher is forked from one goroutine
// locked to its thread for the life of the test binary.
var (
	spawnOnce sync.Once
	spawnReq  chan func()
)

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan func())
		go func() {
			runtime.LockOSThread()
			for f := range spawnReq {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReq <- func() { errc <- cmd.Start() }
	return <-errc
}

// initScript is PID 1's shell before it execs systemd.
func initScript(name string, mask []string) string {
	var b strings.Builder
	b.WriteString(`set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755,size=512m tmpfs /run
mount -t tmpfs -o mode=1777,size=256m tmpfs /tmp
for d in etc var; do
	mkdir -p /run/lbtest/$d.upper /run/lbtest/$d.work
	mount -t overlay overlay -o lowerdir=/$d,upperdir=/run/lbtest/$d.upper,workdir=/run/lbtest/$d.work /$d
done
mount -o remount,bind,ro /sys
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mkdir -p /run/systemd/system /run/systemd/journald.conf.d /run/lbtest/bin
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToConsole=no\n' > /run/systemd/journald.conf.d/lbtest.conf
`)
	for _, u := range mask {
		fmt.Fprintf(&b, "ln -sf /dev/null /run/systemd/system/%s\n", shellQuote(u))
	}
	fmt.Fprintf(&b, "echo %s > /etc/hostname\nexport container=%s\nexec /lib/systemd/systemd --system --unit=basic.target\n",
		shellQuote(name), shellQuote(name))
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// findInit finds the host PID of unshare's child and waits until it is
// systemd (the init script execs it).
func (s *Systemd) findInit(deadline time.Time) error {
	upid := s.cmd.Process.Pid
	for time.Now().Before(deadline) {
		select {
		case <-s.waitDone:
			return fmt.Errorf("unshare exited: %v", s.waitErr)
		default:
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", upid, upid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid, err := strconv.Atoi(f[0])
			if err != nil {
				return err
			}
			s.pid = pid
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) == "systemd" {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New("timeout waiting for systemd to be exec'd")
}

// waitRunning waits for "systemctl is-system-running --wait". Until
// systemd listens on its private socket systemctl fails fast, so retry.
func (s *Systemd) waitRunning(deadline time.Time) error {
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.waitDone:
			return fmt.Errorf("unshare exited: %v", s.waitErr)
		default:
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		out, _ := s.Command(ctx, "systemctl", "is-system-running", "--wait").CombinedOutput()
		cancel()
		last = strings.TrimSpace(string(out))
		if last == "running" || last == "degraded" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("timeout, last state %q", last)
}

// PID is systemd's PID in the host's PID namespace.
func (s *Systemd) PID() int { return s.pid }

// Name is the unique name of this instance (cgroup, hostname, container=).
func (s *Systemd) Name() string { return s.name }

// RootPath is p as seen from the host through the namespace's root, to
// read or write files in its mount namespace (/run, /etc and /var writes
// stay in the namespace).
func (s *Systemd) RootPath(p string) string {
	return fmt.Sprintf("/proc/%d/root/%s", s.pid, strings.TrimPrefix(p, "/"))
}

// WriteFile writes data to p inside the namespace, creating directories.
func (s *Systemd) WriteFile(t testing.TB, p string, data []byte, perm os.FileMode) {
	t.Helper()
	hp := s.RootPath(p)
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hp, data, perm); err != nil {
		t.Fatal(err)
	}
}

// NetNSPath is the file of systemd's network namespace (for setns, or
// `ip link set DEV netns PID`).
func (s *Systemd) NetNSPath() string { return fmt.Sprintf("/proc/%d/ns/net", s.pid) }

// Command returns an unstarted command that runs inside systemd's mount,
// PID, net and UTS namespaces.
func (s *Systemd) Command(ctx context.Context, args ...string) *exec.Cmd {
	a := append([]string{"-t", strconv.Itoa(s.pid), "-m", "-p", "-n", "-u", "--"}, args...)
	return exec.CommandContext(ctx, "nsenter", a...)
}

// Run runs a command inside the namespaces and returns its combined
// output; it fails the test if the command fails.
func (s *Systemd) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.Command(t.Context(), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// InNetNS runs fn on an OS thread inside systemd's network namespace:
// sockets fn creates (listeners, connections) live there and keep working
// from any goroutine afterwards.
// (netns.DoPath: if switching back fails the thread is discarded, never
// reused).
func (s *Systemd) InNetNS(fn func() error) error { return netns.DoPath(s.NetNSPath(), fn) }

// Console returns what the launcher and systemd printed so far.
func (s *Systemd) Console() string {
	b, _ := os.ReadFile(s.console)
	return string(b)
}

type proc struct {
	pid   int
	start string // starttime field of /proc/PID/stat, against PID reuse
}

func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// Fields after the command (which may hold spaces) start after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// procs lists every process in the cgroup tree, plus unshare.
func (s *Systemd) procs() []proc {
	var out []proc
	add := func(pid int) {
		if st := procStart(pid); st != "" {
			out = append(out, proc{pid, st})
		}
	}
	if s.cmd != nil && s.cmd.Process != nil {
		add(s.cmd.Process.Pid)
	}
	_ = filepath.WalkDir(s.cgroup, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				add(pid)
			}
		}
		return nil
	})
	return out
}

// Stop powers systemd off (SIGRTMIN+4, like `systemctl poweroff`), falls
// back to killing the cgroup, removes the cgroup directories depth-first
// and fails t if any process, the cgroup or a mount is left. Start
// registers it as a cleanup; calling it earlier is fine (it runs once).
func (s *Systemd) Stop(t testing.TB) {
	t.Helper()
	s.stopOnce.Do(func() { s.stop(t) })
}

func (s *Systemd) stop(t testing.TB) {
	t.Helper()
	procs := s.procs()
	if s.pid > 0 {
		// glibc's SIGRTMIN is 34; systemd uses SIGRTMIN+4 for poweroff.
		_ = unix.Kill(s.pid, unix.Signal(34+4))
	}
	select {
	case <-s.waitDone:
	case <-time.After(20 * time.Second):
		t.Errorf("systemd did not power off within 20s; killing its cgroup")
		_ = os.WriteFile(filepath.Join(s.cgroup, "cgroup.kill"), []byte("1"), 0)
		_ = s.cmd.Process.Kill()
		select {
		case <-s.waitDone:
		case <-time.After(10 * time.Second):
			t.Errorf("unshare (pid %d) still running after SIGKILL", s.cmd.Process.Pid)
		}
	}
	if err := removeCgroup(s.cgroup); err != nil {
		t.Errorf("remove cgroup: %v", err)
	}
	for _, p := range procs {
		if procStart(p.pid) == p.start {
			t.Errorf("process %d of the namespaced systemd still alive", p.pid)
		}
	}
	if _, err := os.Stat(s.cgroup); err == nil {
		t.Errorf("cgroup %s left behind", s.cgroup)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(mi, []byte(s.name)) {
		t.Errorf("mount of %s left in the host mount table", s.name)
	}
}

// removeCgroup removes a cgroup tree depth-first. A cgroup whose last
// process just exited can report EBUSY briefly, so retry for a while.
func removeCgroup(root string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if len(dirs) == 0 {
			return nil
		}
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		var errs []error
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(errs...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// insideEnv names the test function a re-executed test binary must run.
const insideEnv = "LBTEST_INSIDE"

const resultPrefix = "LBTEST-RESULT "

// SkipUnlessInside skips t unless RunInside started this process to run
// exactly t. Call it first in every helper test meant to run inside.
func SkipUnlessInside(t testing.TB) {
	t.Helper()
	if os.Getenv(insideEnv) != t.Name() {
		t.Skip("helper: runs inside a namespaced systemd through systemdtest.RunInside")
	}
}

// Emit passes v (JSON) back to RunInside's out argument; the last call wins.
func Emit(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("emit: %v", err)
	}
	fmt.Printf("\n%s%s\n", resultPrefix, b)
}

// RunInside runs the test function named test of the current test binary
// inside s's mount, PID, net and UTS namespaces, with env added to the
// environment, and fails t unless it passes. If out is not nil, the
// helper's last Emit is decoded into it. It returns the helper's output.
func RunInside(t testing.TB, s *Systemd, test string, env map[string]string, out any) string {
	t.Helper()
	exe, err := s.testBinary()
	if err != nil {
		t.Fatalf("copy test binary into the namespace: %v", err)
	}
	args := []string{exe, "-test.run=^" + test + "$", "-test.v", "-test.count=1"}
	if dl, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dl.Deadline(); ok {
			args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
		}
	}
	cmd := s.Command(t.Context(), args...)
	cmd.Env = append(os.Environ(), insideEnv+"="+test)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	output, err := cmd.CombinedOutput()
	text := string(output)
	if err != nil {
		t.Fatalf("inside %s: %v\n%s", test, err, text)
	}
	if !strings.Contains(text, "--- PASS: "+test+" ") {
		t.Fatalf("inside %s: did not pass (skipped or not found)\n%s", test, text)
	}
	var logged []string
	for _, l := range strings.Split(text, "\n") {
		if tl := strings.TrimSpace(l); tl != "" && !strings.HasPrefix(tl, "=== RUN") && !strings.HasPrefix(tl, "--- PASS") &&
			tl != "PASS" && !strings.HasPrefix(tl, resultPrefix) {
			logged = append(logged, l)
		}
	}
	if len(logged) > 0 {
		t.Logf("inside %s:\n%s", test, strings.Join(logged, "\n"))
	}
	if out != nil {
		var last string
		for _, l := range strings.Split(text, "\n") {
			if r, ok := strings.CutPrefix(l, resultPrefix); ok {
				last = r
			}
		}
		if last == "" {
			t.Fatalf("inside %s: no result emitted\n%s", test, text)
		}
		if err := json.Unmarshal([]byte(last), out); err != nil {
			t.Fatalf("inside %s: decode result: %v", test, err)
		}
	}
	return text
}

// testBinary copies the running test binary into the namespace's /run
// (the host's /tmp, where go test keeps it, is hidden by a tmpfs there).
func (s *Systemd) testBinary() (string, error) {
	s.exeOnce.Do(func() {
		src, err := os.Executable()
		if err != nil {
			s.exeErr = err
			return
		}
		s.exePath = "/run/lbtest/bin/" + filepath.Base(src)
		in, err := os.Open(src)
		if err != nil {
			s.exeErr = err
			return
		}
		defer in.Close()
		dst, err := os.OpenFile(s.RootPath(s.exePath), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			s.exeErr = err
			return
		}
		if _, err := io.Copy(dst, in); err != nil {
			dst.Close()
			s.exeErr = err
			return
		}
		s.exeErr = dst.Close()
	})
	return s.exePath, s.exeErr
}
