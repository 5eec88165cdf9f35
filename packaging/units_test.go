package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/test/systemdtest"
)

// Capability bits (linux/capability.h).
const (
	capChown       = 0
	capDACOverride = 1
	capFowner      = 3
	capNetAdmin    = 12
	capPerfmon     = 38
	capBPF         = 39
)

// TestUnitsRun starts the packaged units under a real systemd (PID 1 in
// its own namespaces, /etc and /var overlays that vanish with it): the
// agent, with its sandbox and capabilities as shipped, must reach READY
// (Type=notify) with eBPF probes, and hold exactly the shipped capability
// set; the sync service, reading /etc/default/lbctl-sync, must run one sync
// in its sandbox; the timer must be scheduled. The only change is a drop-in
// pointing ExecStart= at the test's binary (/usr/bin is the host's here).
func TestUnitsRun(t *testing.T) {
	systemdtest.SkipUnlessRoot(t)
	need(t, "dpkg-deb")
	bin, deb := buildDeb(t)
	root := t.TempDir()
	run(t, "dpkg-deb", "--extract", deb, root)
	sd := systemdtest.Start(t, systemdtest.Options{Name: "lbt-pkg"})

	copyIn := func(src, dst string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		sd.WriteFile(t, dst, b, mode)
	}
	const lbctl = "/run/lbtest/bin/lbctl"
	copyIn(bin, lbctl, 0o755)
	for _, u := range units {
		copyIn(filepath.Join(root, "lib/systemd/system", u), "/etc/systemd/system/"+u, 0o644)
	}
	for _, f := range []string{"/etc/lbctl/lbctl.yaml", "/etc/default/lbctl-sync"} {
		copyIn(filepath.Join(root, f), f, 0o644)
	}
	copyIn(filepath.Join(root, "usr/lib/tmpfiles.d/lbctl.conf"), "/etc/tmpfiles.d/lbctl.conf", 0o644)
	for _, u := range []string{"lbctl-agent.service", "lbctl-sync.service"} {
		unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system", u))
		var execStart string
		for _, l := range strings.Split(string(unit), "\n") {
			if strings.HasPrefix(l, "ExecStart=/usr/bin/lbctl ") {
				execStart = strings.Replace(l, "/usr/bin/lbctl", lbctl, 1)
			}
		}
		if execStart == "" {
			t.Fatalf("%s: no ExecStart=/usr/bin/lbctl", u)
		}
		sd.WriteFile(t, "/etc/systemd/system/"+u+".d/test-binary.conf", []byte("[Service]\nExecStart=\n"+execStart+"\n"), 0o644)
	}
	// The sync source: an empty bundle directory, so the run reaches the
	// source and fails there (no bundle), having loaded its config and
	// opened the releases store inside its sandbox.
	sd.WriteFile(t, "/etc/default/lbctl-sync", []byte("LBCTL_SYNC_SOURCE=/run/lbtest/bundles\nLBCTL_SYNC_ATTEMPTS=1\n"), 0o644)
	sd.Run(t, "mkdir", "-p", "/run/lbtest/bundles")
	// What an install leaves: BIRD running with the two static protocols
	// whose include files the agent rewrites (through its sandbox's
	// ReadWritePaths=).
	for _, f := range []string{"announce4.conf", "announce6.conf"} {
		sd.WriteFile(t, "/etc/bird/lbctl/"+f, []byte("# empty\n"), 0o644)
	}
	sd.WriteFile(t, "/etc/bird/bird.conf", []byte(`router id 192.0.2.1;
protocol device {}
protocol static vips4 {
	ipv4;
include "/etc/bird/lbctl/announce4.conf";
}
protocol static vips6 {
	ipv6;
include "/etc/bird/lbctl/announce6.conf";
}
`), 0o644)
	sd.Run(t, "mkdir", "-p", "/run/bird")
	sd.Run(t, "systemd-run", "--unit=lbt-bird", "bird", "-f", "-c", "/etc/bird/bird.conf", "-s", "/run/bird/bird.ctl")
	if out, err := sd.Command(t.Context(), "sh", "-c", "for i in $(seq 100); do birdc -s /run/bird/bird.ctl show status >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1").CombinedOutput(); err != nil {
		t.Fatalf("BIRD did not start: %v %s\n%s", err, out, sd.Run(t, "journalctl", "--no-pager", "-o", "cat", "-u", "lbt-bird"))
	}
	// What postinst does.
	sd.Run(t, "systemd-tmpfiles", "--create", "lbctl.conf")
	sd.Run(t, "systemctl", "daemon-reload")

	start := time.Now()
	if out, err := sd.Command(t.Context(), "timeout", "60", "systemctl", "start", "lbctl-agent.service").CombinedOutput(); err != nil {
		t.Fatalf("start lbctl-agent: %v\n%s\n%s", err, out, sd.Run(t, "journalctl", "--no-pager", "-u", "lbctl-agent.service"))
	}
	t.Logf("lbctl-agent.service active (READY) in %v", time.Since(start).Round(time.Millisecond))
	show := sd.Run(t, "systemctl", "show", "-p", "ActiveState,SubState,MainPID,NRestarts,WatchdogUSec", "lbctl-agent.service")
	for _, want := range []string{"ActiveState=active", "SubState=running", "NRestarts=0", "WatchdogUSec=30s"} {
		if !strings.Contains(show, want) {
			t.Errorf("lbctl-agent: want %s in\n%s", want, show)
		}
	}
	pid := ""
	for _, l := range strings.Split(show, "\n") {
		if v, ok := strings.CutPrefix(l, "MainPID="); ok {
			pid = v
		}
	}
	status := sd.Run(t, "cat", "/proc/"+pid+"/status")
	wantCaps := uint64(1)<<capChown | 1<<capDACOverride | 1<<capFowner | 1<<capNetAdmin | 1<<capPerfmon | 1<<capBPF
	for _, field := range []string{"CapEff:", "CapBnd:"} {
		for _, l := range strings.Split(status, "\n") {
			if v, ok := strings.CutPrefix(l, field); ok {
				got, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if got != wantCaps {
					t.Errorf("agent %s %016x, want %016x", field, got, wantCaps)
				}
			}
		}
	}
	// Every thread of the agent runs with the unit's timer slack (the Go
	// runtime's threads inherit it from the process systemd started).
	tasks := sd.Run(t, "sh", "-c", "cat /proc/"+pid+"/task/*/timerslack_ns 2>/dev/null || cat /proc/"+pid+"/timerslack_ns")
	if f := strings.Fields(tasks); len(f) == 0 || slices.ContainsFunc(f, func(v string) bool { return v != "2000000" }) {
		t.Errorf("agent timer slack %q, want 2000000 ns (TimerSlackNSec=2ms)", tasks)
	}
	if !strings.Contains(status, "NoNewPrivs:\t1") || !strings.Contains(status, "Seccomp:\t2") {
		t.Errorf("agent not confined (NoNewPrivs, seccomp filter):\n%s", status)
	}
	journal := sd.Run(t, "journalctl", "--no-pager", "-o", "cat", "-u", "lbctl-agent.service")
	if !strings.Contains(journal, "agent ready") || !strings.Contains(journal, "probe=ebpf") {
		t.Errorf("the agent did not start with eBPF probes:\n%s", journal)
	}
	t.Logf("agent journal:\n%s", journal)

	// The sync service, first with an empty source: it fails there, having
	// loaded its config and opened the releases store in its sandbox.
	out, err := sd.Command(t.Context(), "timeout", "60", "systemctl", "start", "lbctl-sync.service").CombinedOutput()
	syncLog := sd.Run(t, "journalctl", "--no-pager", "-o", "cat", "-u", "lbctl-sync.service")
	if err == nil || !strings.Contains(syncLog, "no <name>-<serial>.bundle file") {
		t.Errorf("lbctl-sync.service: %v %s\n%s", err, out, syncLog)
	}
	if out, err := sd.Command(t.Context(), "test", "-d", "/var/lib/lbctl/releases").CombinedOutput(); err != nil {
		t.Errorf("sync did not open the releases store: %v %s", err, out)
	}
	// Then with a signed bundle of the current serial: verified against
	// /etc/lbctl/trusted.d and skipped, the run succeeds.
	keys := t.TempDir()
	run(t, bin, "keygen", filepath.Join(keys, "site"), "--unencrypted")
	run(t, bin, "build", filepath.Join("..", "examples", "campus"), "-o", filepath.Join(keys, "campus-5.bundle"),
		"--key", filepath.Join(keys, "site.key"), "--serial", "5")
	copyIn(filepath.Join(keys, "site.pub"), "/etc/lbctl/trusted.d/site.pub", 0o644)
	copyIn(filepath.Join(keys, "campus-5.bundle"), "/run/lbtest/bundles/campus-5.bundle", 0o644)
	sd.Run(t, "mkdir", "-p", "/var/lib/lbctl/releases/5")
	sd.Run(t, "ln", "-s", "releases/5", "/var/lib/lbctl/current")
	out, err = sd.Command(t.Context(), "timeout", "60", "systemctl", "start", "lbctl-sync.service").CombinedOutput()
	syncLog = sd.Run(t, "journalctl", "--no-pager", "-o", "cat", "-u", "lbctl-sync.service")
	if err != nil || !strings.Contains(syncLog, "release 5 from /run/lbtest/bundles/campus-5.bundle is current: nothing to do") {
		t.Errorf("lbctl-sync.service with the current bundle: %v %s\n%s", err, out, syncLog)
	}
	t.Logf("sync journal:\n%s", syncLog)

	// The timer is scheduled.
	sd.Run(t, "systemctl", "start", "lbctl-sync.timer")
	timers := sd.Run(t, "systemctl", "list-timers", "--all", "--no-pager", "lbctl-sync.timer")
	if !strings.Contains(timers, "lbctl-sync.timer") || !strings.Contains(timers, "lbctl-sync.service") {
		t.Errorf("timer not listed:\n%s", timers)
	}

	// A clean stop.
	if out, err := sd.Command(t.Context(), "timeout", "60", "systemctl", "stop", "lbctl-agent.service").CombinedOutput(); err != nil {
		t.Errorf("stop: %v %s", err, out)
	}
	if got := strings.TrimSpace(sd.Run(t, "systemctl", "show", "-p", "Result", "--value", "lbctl-agent.service")); got != "success" {
		t.Errorf("agent stop result %q:\n%s", got, sd.Run(t, "journalctl", "--no-pager", "-o", "cat", "-u", "lbctl-agent.service"))
	}
	if _, err := os.Stat(sd.RootPath("/run/lbctl")); err != nil {
		t.Errorf("/run/lbctl removed with the agent's stop: %v", err)
	}
}
