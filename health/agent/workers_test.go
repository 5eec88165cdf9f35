package agent

import (
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/lbctl/lbctl/health/haproxy"
)

// A reload leaves two workers (the old one finishing, the new one serving)
// under the master; learning them again keeps both open and loses none:
// the second match once found a forgotten slot and crashed the agent.
func TestWorkersLearnTwoWorkersTwice(t *testing.T) {
	master := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Process.Kill(); master.Wait() })
	pid := master.Process.Pid
	var kids []int
	for deadline := time.Now().Add(10 * time.Second); len(kids) < 2; {
		kids, _ = haproxy.Workers(haproxy.ProcRoot, pid)
		if len(kids) < 2 || slices.Contains(kids, pid) {
			kids = nil
			if time.Now().After(deadline) {
				t.Fatal("the shell did not start its two children")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	w := &Workers{}
	for range 3 {
		w.learn("vip", pid)
	}
	got, stopped := w.Stopped("vip")
	slices.Sort(got)
	slices.Sort(kids)
	if !slices.Equal(got, kids) || stopped {
		t.Errorf("workers %v (stopped %v), want %v running", got, stopped, kids)
	}
}
