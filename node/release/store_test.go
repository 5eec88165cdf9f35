package release

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lbctl/lbctl/node/plan"
)

func TestStageCommitPrune(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Current(); ok || err != nil {
		t.Fatalf("fresh store: current ok=%v err=%v", ok, err)
	}
	for n := uint64(1); n <= 8; n++ {
		r := &Release{Serial: n, Bundle: []byte{byte(n)}, State: &plan.State{Serial: n}}
		if err := s.Stage(r); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(n); err != nil {
			t.Fatal(err)
		}
		cur, ok, err := s.Current()
		if err != nil || !ok || cur != n {
			t.Fatalf("current = %d %v %v, want %d", cur, ok, err, n)
		}
	}
	// Roll back to 3, then prune: 3 survives as current although it is old.
	if err := s.Commit(3); err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(Keep); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Serials()
	if want := []uint64{3, 4, 5, 6, 7, 8}; !slices.Equal(got, want) {
		t.Fatalf("serials after prune = %v, want %v", got, want)
	}
	r, err := s.Load(3)
	if err != nil || r.State.Serial != 3 || r.Bundle[0] != 3 {
		t.Fatalf("load 3: %+v %v", r, err)
	}
	if _, err := s.Load(1); !errors.Is(err, ErrNoRelease) {
		t.Fatalf("load pruned: %v", err)
	}
	if err := s.Commit(42); !errors.Is(err, ErrNoRelease) {
		t.Fatalf("commit of unstaged: %v", err)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(s.Root)
	for _, e := range ents {
		if e.Name()[0] == '.' {
			t.Errorf("leftover %s", e.Name())
		}
	}
	link, _ := os.Readlink(filepath.Join(s.Root, "current"))
	if link != "releases/3" {
		t.Errorf("current -> %q", link)
	}
}

func TestIntentAndLog(t *testing.T) {
	s, _ := Open(t.TempDir())
	if in, err := s.ReadIntent(); in != nil || err != nil {
		t.Fatalf("no intent expected: %v %v", in, err)
	}
	want := Intent{Op: "install", From: 1, HasFrom: true, To: 2, PID: 7, Started: time.Unix(10, 0).UTC()}
	if err := s.WriteIntent(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadIntent()
	if err != nil || *got != want {
		t.Fatalf("intent = %+v %v", got, err)
	}
	if err := s.ClearIntent(); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.ReadIntent(); in != nil {
		t.Fatal("intent survived clear")
	}
	for i := 1; i <= 3; i++ {
		if err := s.Log(LogEntry{Op: "install", To: uint64(i), Result: "committed"}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History()
	if err != nil || len(h) != 3 || h[2].To != 3 {
		t.Fatalf("history = %+v %v", h, err)
	}
}

func TestLock(t *testing.T) {
	s, _ := Open(t.TempDir())
	unlock, err := s.Lock(false)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks are per open file description: a second open conflicts
	// even within one process.
	if _, err := s.Lock(false); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	unlock()
	u2, err := s.Lock(false)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	u2()
}
