package scale

import (
	"strings"
	"testing"
	"time"
)

// TestParseTook reads the phases of an install's "took:" line.
func TestParseTook(t *testing.T) {
	out := "installed release 103 (was 102) in 2.546s: 0 added, 1 changed, 0 removed, 149 unchanged\n" +
		"  took: verify 82ms, render 1.5s, lock 0s, plan 70ms, validate 377ms, stage 84ms, apply 1m25.673s, commit 1ms\n"
	got := map[string]time.Duration{}
	parseTook(out, got)
	want := map[string]time.Duration{"verify": 82 * time.Millisecond, "render": 1500 * time.Millisecond, "lock": 0,
		"plan": 70 * time.Millisecond, "validate": 377 * time.Millisecond, "stage": 84 * time.Millisecond,
		"apply": 85673 * time.Millisecond, "commit": time.Millisecond}
	if len(got) != len(want) {
		t.Errorf("phases %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestMarkdownFailedSize: a size that failed is named with its stage, and
// the figures it did not reach print as —, not as zero.
func TestMarkdownFailedSize(t *testing.T) {
	ok := newRow(8)
	ok.Cold["lb1"], ok.LoadCold["lb1"] = 3*time.Second, 2.5
	failed := newRow(500)
	failed.Cold["lb1"], failed.LoadCold["lb1"] = 90*time.Second, 20
	failed.Failed, failed.Took = "routes through both nodes", 7*time.Minute
	md := Markdown([]*Row{ok, failed}, time.Unix(1700000000, 0))
	for _, want := range []string{
		"| 8 | 3.00 s (load 2.5) | — (—) |",
		"| 500 | 90.00 s (load 20.0) | — (—) |",
		"**500 VIPs failed during routes through both nodes** after 420.00 s",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
	if !strings.Contains(md, "   500 VIPs | —\n") {
		t.Errorf("an unmeasured figure drawn in a growth curve:\n%s", md)
	}
	if strings.Contains(md, "8 VIPs failed") {
		t.Errorf("a completed size reported as failed:\n%s", md)
	}
}
