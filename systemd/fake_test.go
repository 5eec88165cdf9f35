package systemd

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestFakeTransitions(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	a, b := UnitName("a"), UnitName("b")

	if err := f.Start(ctx, a); !errors.Is(err, ErrUnitNotFound) {
		t.Fatalf("start before the template is installed: %v, want ErrUnitNotFound", err)
	}
	f.Install(TemplateName)
	if err := f.Start(ctx, a); !errors.Is(err, ErrUnitNotFound) {
		t.Fatalf("start before daemon-reload: %v, want ErrUnitNotFound", err)
	}
	if err := f.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(ctx, a); !errors.Is(err, ErrNotActive) {
		t.Fatalf("reload of an inactive unit: %v, want ErrNotActive", err)
	}
	for _, u := range []string{a, b} {
		if err := f.Start(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := f.State(ctx, a)
	for range 3 {
		if err := f.Reload(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := f.State(ctx, a)
	if before.MainPID == 0 || after.MainPID != before.MainPID {
		t.Errorf("reload changed main PID %d -> %d", before.MainPID, after.MainPID)
	}
	if err := f.Restart(ctx, b); err != nil {
		t.Fatal(err)
	}
	f.Fail(a, "reload")
	err := f.Reload(ctx, a)
	var je *JobError
	if !errors.As(err, &je) || !errors.Is(err, ErrJobFailed) || je.Result != "failed" || je.State.ActiveState != "active" {
		t.Fatalf("injected reload failure: %v", err)
	}
	if st, _ := f.State(ctx, a); st.MainPID != before.MainPID || !st.Active() {
		t.Errorf("failed reload changed the unit: %v", st)
	}
	if err := f.Stop(ctx, "nope.service"); !errors.Is(err, ErrUnitNotFound) {
		t.Errorf("stop of an unknown unit: %v", err)
	}
	if err := f.Stop(ctx, UnitName("never-started")); err != nil {
		t.Errorf("stop of a loadable inactive unit: %v", err)
	}
	f.Install("other.service")

	want := `file lb-haproxy@.service
file other.service (not loaded)
unit lb-haproxy@a.service active/running pid=1001 reloads=3
unit lb-haproxy@b.service active/running pid=1003 reloads=0
unit lb-haproxy@never-started.service inactive/dead pid=0 reloads=0
daemon-reload needed
`
	if got := f.String(); got != want {
		t.Errorf("state:\n%s\nwant:\n%s", got, want)
	}
	if err := f.Restart(ctx, a); err == nil || !strings.Contains(err.Error(), "daemon-reload needed") {
		t.Errorf("restart with changed files: %v", err)
	}
	list, err := f.List(ctx, "lb-haproxy@*.service")
	if err != nil || len(list) != 3 || list[0].Name != a || list[2].Name != UnitName("never-started") {
		t.Errorf("List = %v, %v", list, err)
	}

	f.Fail(b, "start")
	if err := f.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Stop(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx, b); !errors.Is(err, ErrJobFailed) {
		t.Fatalf("injected start failure: %v", err)
	}
	if st, _ := f.State(ctx, b); st.ActiveState != "failed" || st.MainPID != 0 {
		t.Errorf("after failed start: %v", st)
	}
}

func TestFailedExec(t *testing.T) {
	cmd := func(argv []string, exited uint64, code, status int32) []any {
		return []any{argv[0], argv, false, uint64(1), uint64(1), exited, uint64(2), uint32(7), code, status}
	}
	props := map[string]any{
		"ExecStartPre": [][]any{cmd([]string{"/usr/sbin/haproxy", "-c", "-f", "x"}, 5, 1, 0)},
		"ExecStart":    [][]any{cmd([]string{"/usr/sbin/haproxy", "-Ws"}, 9, 2, 9)},
		"ExecReload": [][]any{
			cmd([]string{"/usr/sbin/haproxy", "-c", "-f", "x"}, 5, 1, 1),
			cmd([]string{"/bin/kill", "-USR2", "1"}, 0, 0, 0),
		},
	}
	if got, pid := failedExec("reload", props); got != "ExecReload /usr/sbin/haproxy -c -f x exited with status 1" || pid != 7 {
		t.Errorf("reload: %q pid %d", got, pid)
	}
	if got, _ := failedExec("start", props); got != "ExecStart /usr/sbin/haproxy -Ws killed by signal 9" {
		t.Errorf("start: %q", got)
	}
	if got, pid := failedExec("stop", props); got != "" || pid != 0 {
		t.Errorf("stop: %q %d", got, pid)
	}
}

func TestJobErrorMessage(t *testing.T) {
	e := &JobError{Op: "reload", Unit: "lb-haproxy@a.service", Result: "failed",
		State: &UnitState{ActiveState: "active", SubState: "running", Result: "success"},
		Hint:  "ExecReload /usr/sbin/haproxy -c -f x exited with status 1"}
	want := "reload lb-haproxy@a.service: job failed (active/running, result success): ExecReload /usr/sbin/haproxy -c -f x exited with status 1"
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e.Error(), want)
	}
}
