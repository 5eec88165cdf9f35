package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/test/internal/cgroup"
	"github.com/lbctl/lbctl/test/internal/nsunits"
)

// SystemdNodes launches each LB node as systemd running as PID 1 in its own
// pid, mount, network, UTS and cgroup namespaces, in a cgroup of its own,
// like a small container sharing the host's file system: /run and /tmp are
// fresh tmpfs, /etc, /var and /usr are overlays whose writes stay in the
// node, /sys and /proc/sys are read-only, the node's certificate directory
// is bound to /etc/lbctl/certs, and every unit that would touch the host is
// masked. BIRD's Debian unit is left alone: an install starts it.
//
// The node outlives the process that launched it (own session, no parent
// death signal); Down powers it off (SIGRTMIN+4) and removes its cgroup.
// Use its Launch method as Options.LaunchNode.
type SystemdNodes struct {
	// Mask lists units to mask in addition to nodeMask.
	Mask []string
	// BootTimeout bounds the wait for the node's systemd to report running;
	// default 30 s.
	BootTimeout time.Duration
}

// nodeMask are the units masked on every systemd LB node: those that
// would touch the host (nsunits.Host), udev, ssh and cron. bird.service is
// not among them: the node's install starts it.
var nodeMask = append(slices.Clone(nsunits.Host),
	"systemd-udevd.service", "systemd-udev-trigger.service", "systemd-udev-settle.service", "ssh.service", "cron.service")

// sigPowerOff is SIGRTMIN+4 (glibc's SIGRTMIN is 34): systemd powers off.
const sigPowerOff = syscall.Signal(34 + 4)

// Launch starts the node's systemd and waits until it is running.
func (o SystemdNodes) Launch(ctx context.Context, n Node) (Launched, error) {
	if o.BootTimeout <= 0 {
		o.BootTimeout = 30 * time.Second
	}
	root, err := cgroup.Root()
	if err != nil {
		return Launched{}, err
	}
	cg := filepath.Join(root, "lbctl-testbed-"+n.NetNS)
	if err := os.Mkdir(cg, 0o755); err != nil {
		return Launched{}, fmt.Errorf("cgroup: %w", err)
	}
	fail := func(err error) (Launched, error) {
		_ = removeCgroup(cg)
		return Launched{}, err
	}
	cgfd, err := unix.Open(cg, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("cgroup: %w", err))
	}
	defer unix.Close(cgfd)
	if _, err := os.Stat(n.CertDir); err != nil {
		return fail(fmt.Errorf("certificate directory: %w", err))
	}
	console, err := os.OpenFile(filepath.Join(n.Dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail(err)
	}
	defer console.Close()

	mask := append(slices.Clone(nodeMask), o.Mask...)
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount", "--mount-proc", "--net", "--uts",
		"--cgroup", "--kill-child", "--", "/bin/sh", "-c", nodeInitScript(n.Hostname, "lbctl-testbed-"+n.Name, mask), "init", n.CertDir)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = console, console
	// Own session and no parent death signal: the node outlives this
	// process. clone3 puts the child straight into the node's cgroup, so
	// the cgroup namespace unshare makes is rooted there.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, UseCgroupFD: true, CgroupFD: cgfd}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("start unshare: %w", err))
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	kill := func(err error) (Launched, error) {
		_ = os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0)
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return fail(fmt.Errorf("%w\nconsole:\n%s", err, logTail(console.Name())))
	}
	deadline := time.Now().Add(o.BootTimeout)
	pid, err := findInit(cmd.Process.Pid, done, deadline)
	if err != nil {
		return kill(err)
	}
	if err := waitSystemRunning(ctx, pid, done, deadline); err != nil {
		return kill(err)
	}
	return Launched{PID: pid, StopSignal: sigPowerOff, Cgroup: cg}, nil
}

// nodeInitScript is PID 1's shell before it execs systemd.
func nodeInitScript(hostname, container string, mask []string) string {
	var b strings.Builder
	b.WriteString(`set -e
mount --make-rprivate /
# The certificates live in the testbed directory, which the node's tmpfs on
# /run or /tmp may hide: hold it open, bind it into place later.
exec 3< "$1"
mount -t tmpfs -o mode=1777,size=256m tmpfs /tmp
mount -t tmpfs -o mode=0755,size=1g tmpfs /run
for d in etc var usr; do
	mkdir -p /run/lbtb/$d.upper /run/lbtb/$d.work
	mount -t overlay overlay -o lowerdir=/$d,upperdir=/run/lbtb/$d.upper,workdir=/run/lbtb/$d.work /$d
done
mkdir -p /etc/lbctl/certs
mount --no-canonicalize --bind /proc/self/fd/3 /etc/lbctl/certs
exec 3<&-
mount -o remount,bind,ro /sys
# A bpf file system of the node's own (the agent pins flow handoff there);
# the host's /sys/fs/bpf is never touched.
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mkdir -p /run/systemd/system /run/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToConsole=no\n' > /run/systemd/journald.conf.d/lbtb.conf
`)
	for _, u := range mask {
		fmt.Fprintf(&b, "ln -sf /dev/null /run/systemd/system/%s\n", shellQuote(u))
	}
	fmt.Fprintf(&b, "hostname %s\necho %s > /etc/hostname\nexport container=%s\nexec /lib/systemd/systemd --system --unit=basic.target\n",
		shellQuote(hostname), shellQuote(hostname), shellQuote(container))
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// findInit finds the host PID of unshare's child and waits until it is
// systemd (the init script execs it).
func findInit(upid int, done <-chan struct{}, deadline time.Time) (int, error) {
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return 0, errors.New("unshare exited before systemd started")
		default:
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", upid, upid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid, err := strconv.Atoi(f[0])
			if err != nil {
				return 0, err
			}
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) == "systemd" {
				return pid, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, errors.New("timeout waiting for systemd to be exec'd")
}

// waitSystemRunning waits until the node's systemd reports running (or
// degraded). Until systemd listens on its private socket systemctl fails
// fast, so it retries.
func waitSystemRunning(ctx context.Context, pid int, done <-chan struct{}, deadline time.Time) error {
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return errors.New("systemd exited")
		default:
		}
		cctx, cancel := context.WithDeadline(ctx, deadline)
		out, _ := nsenterAll(cctx, pid, "systemctl", "is-system-running", "--wait").CombinedOutput()
		cancel()
		last = strings.TrimSpace(string(out))
		if last == "running" || last == "degraded" {
			return nil
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("systemd not running after boot timeout (last state %q)", last)
}

// nsenterAll returns a command running argv inside the mount, pid, network
// and UTS namespaces of pid (D-Bus to systemd needs the caller inside its
// pid namespace).
func nsenterAll(ctx context.Context, pid int, argv ...string) *exec.Cmd {
	a := append([]string{"-t", strconv.Itoa(pid), "-m", "-p", "-n", "-u", "--"}, argv...)
	return exec.CommandContext(ctx, "nsenter", a...)
}
