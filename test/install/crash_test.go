//go:build linux

package install_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lbctl/lbctl/systemd"
	"github.com/lbctl/lbctl/test/systemdtest"
)

// crashTrials is how many installs TestCrash kills.
const crashTrials = 30

// CrashTrial is one killed install.
type CrashTrial struct {
	Serial uint64 `json:"serial"`
	// From and To are the contents ("A" or "B") before and of the bundle.
	From string `json:"from"`
	To   string `json:"to"`
	// Delay is when the install was killed; Exited means it finished
	// before (the kill came too late).
	Delay  time.Duration `json:"delay"`
	Exited bool          `json:"exited"`
	// Recovered means lbctl status found an intent record and restored.
	Recovered bool `json:"recovered"`
	// Outcome is "old", "new" or "mix"; Diffs explain a mix.
	Outcome string   `json:"outcome"`
	Diffs   []string `json:"diffs,omitempty"`
	Status  string   `json:"status,omitempty"`
}

// CrashResult is what TestHelperCrash emits.
type CrashResult struct {
	Seed     uint64           `json:"seed"`
	Duration map[string]int64 `json:"duration_ms"`
	Trials   []CrashTrial     `json:"trials"`
}

func lbctlInside(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, insideBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestHelperCrash runs inside the node, at release 1 (content A). Bundles
// /run/lbtest/bundles/<A|B>-<serial> exist for serials 2 and up. It times
// an uninterrupted install in each direction (recording the node state of
// each content), then SIGKILLs lbctl install at a random moment of that
// duration (every other trial in its last fifth or up to 15% beyond, where
// the commit is), runs lbctl status and checks the node is entirely the
// old release or entirely the new one.
func TestHelperCrash(t *testing.T) {
	systemdtest.SkipUnlessInside(t)
	ctx := t.Context()
	units, err := systemd.NewDBus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer units.Close()
	seed, _ := strconv.ParseUint(os.Getenv("SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, seed))
	res := CrashResult{Seed: seed, Duration: map[string]int64{}}
	bundle := func(content string, serial uint64) string {
		return filepath.Join(insideBundle, fmt.Sprintf("%s-%d", content, serial))
	}

	ref := map[string]*State{}
	dur := map[string]time.Duration{}
	cur, serial := "A", uint64(1)
	for _, to := range []string{"B", "A"} {
		serial++
		start := time.Now()
		if out, err := lbctlInside(ctx, "install", "--config", configPath, bundle(to, serial)); err != nil {
			t.Fatalf("install %s-%d: %v\n%s", to, serial, err, out)
		}
		dur[to] = time.Since(start)
		res.Duration[to] = dur[to].Milliseconds()
		st, err := capture(ctx, units)
		if err != nil {
			t.Fatal(err)
		}
		ref[to] = st
		cur = to
	}
	other := map[string]string{"A": "B", "B": "A"}

	for i := 0; i < crashTrials; i++ {
		next := serial + 1
		to := other[cur]
		// Even trials kill anywhere in the install's duration; odd ones in
		// its last fifth and a little beyond, around the commit.
		d := dur[to]
		delay := time.Duration(rng.Int64N(int64(d)))
		if i%2 == 1 {
			delay = d*4/5 + time.Duration(rng.Int64N(int64(d*7/20)))
		}
		tr := CrashTrial{Serial: next, From: cur, To: to, Delay: delay}
		cmd := exec.Command(insideBin, "install", "--config", configPath, bundle(to, next))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			tr.Exited = true
			if err != nil {
				t.Errorf("trial %d: install exited before the kill with %v\n%s", i, err, out.String())
			}
		case <-time.After(tr.Delay):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}

		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		status, err := lbctlInside(sctx, "status", "--config", configPath)
		cancel()
		tr.Recovered = strings.Contains(status, "interrupted")
		if err != nil {
			t.Errorf("trial %d: lbctl status: %v\n%s", i, err, status)
		}
		got, cerr := capture(ctx, units)
		if cerr != nil {
			tr.Diffs = append(tr.Diffs, "capture: "+cerr.Error())
		}
		for _, c := range []struct {
			outcome, content string
			serial           uint64
		}{{"old", cur, serial}, {"new", to, next}} {
			want := *ref[c.content]
			want.Current = filepath.Join("releases", strconv.FormatUint(c.serial, 10))
			d := diff(&want, got, diffOptions{IgnorePIDs: true})
			if len(d) == 0 && cerr == nil {
				tr.Outcome = c.outcome
				break
			}
			tr.Diffs = append(tr.Diffs, "against the "+c.outcome+" release:")
			tr.Diffs = append(tr.Diffs, d...)
		}
		if tr.Outcome == "" {
			tr.Outcome = "mix"
			tr.Status = status
		} else {
			tr.Diffs = nil
		}
		if tr.Outcome == "new" {
			cur, serial = to, next
		}
		res.Trials = append(res.Trials, tr)
	}
	systemdtest.Emit(t, res)
}

// TestCrash kills lbctl install (the real binary, inside the node) at
// random moments of upgrades between two campus releases that differ in
// every way an install can change a node, and checks that after the next
// lbctl status the node is entirely one release or the other.
func TestCrash(t *testing.T) {
	systemdtest.SkipUnlessRoot(t)
	if testing.Short() {
		t.Skip("long (a minute or two): skipped with -short")
	}
	// The two long tests run side by side: most of their time is spent
	// waiting for systemd, HAProxy and BIRD in their own nodes.
	t.Parallel()
	rA, rB := tree(t, nil), tree(t, upgradeEdits(t))
	n := newNode(t, resolve(t, rA), resolve(t, rB))
	n.install(n.put(build(t, n.keys, rA, 1), "1"))
	for s := uint64(2); s <= 3+crashTrials; s++ {
		n.put(build(t, n.keys, rA, s), fmt.Sprintf("A-%d", s))
		n.put(build(t, n.keys, rB, s), fmt.Sprintf("B-%d", s))
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("LBTEST_SEED"), 10, 64); err == nil {
		seed = s
	}
	var res CrashResult
	start := time.Now()
	systemdtest.RunInside(t, n.sd, "TestHelperCrash", map[string]string{"SEED": strconv.FormatUint(seed, 10)}, &res)
	t.Logf("seed %d (rerun with LBTEST_SEED=%d); uninterrupted installs: A->B %d ms, B->A %d ms; %d trials in %v",
		res.Seed, res.Seed, res.Duration["B"], res.Duration["A"], len(res.Trials), time.Since(start).Round(time.Second))
	count := map[string]int{}
	recovered, exited := 0, 0
	for i, tr := range res.Trials {
		count[tr.Outcome]++
		if tr.Recovered {
			recovered++
		}
		if tr.Exited {
			exited++
		}
		t.Logf("trial %2d: %s->%s serial %d killed at %4d ms: %s (recovered by status: %v, finished before the kill: %v)",
			i+1, tr.From, tr.To, tr.Serial, tr.Delay.Milliseconds(), tr.Outcome, tr.Recovered, tr.Exited)
		if tr.Outcome == "mix" {
			t.Errorf("trial %d: node is neither the old nor the new release:\n  %s\nlbctl status:\n%s", i+1, strings.Join(tr.Diffs, "\n  "), tr.Status)
		}
	}
	if len(res.Trials) != crashTrials {
		t.Errorf("%d trials, want %d", len(res.Trials), crashTrials)
	}
	t.Logf("crash trials: %d old, %d new, %d mixed; %d restored by lbctl status, %d finished before the kill",
		count["old"], count["new"], count["mix"], recovered, exited)
}
