package agent

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// recordingHandoff records the firewalls the agent hands to the datapath.
type recordingHandoff struct {
	mu  sync.Mutex
	fws []model.Firewall
}

func (h *recordingHandoff) Apply(fw model.Firewall) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fws = append(h.fws, fw)
	return nil
}

func (h *recordingHandoff) Status() HandoffStatus { return HandoffStatus{State: "active"} }

func (h *recordingHandoff) last() (model.Firewall, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.fws) == 0 {
		return model.Firewall{}, 0
	}
	return h.fws[len(h.fws)-1], len(h.fws)
}

func releaseWithVIPPort(t *testing.T, store *release.Store, serial uint64, vip string) {
	t.Helper()
	a := netip.MustParseAddr(vip)
	st := &plan.State{Serial: serial, Firewall: model.Firewall{VIPs4: []netip.Addr{a}, Accept4: []model.AddrPort{{Addr: a, Port: 80}}}}
	if err := store.Stage(&release.Release{Serial: serial, State: st}); err != nil {
		t.Fatal(err)
	}
	if err := store.Commit(serial); err != nil {
		t.Fatal(err)
	}
}

// TestCommittedAppliesHandoff checks that POST /committed hands the newly
// committed release to the flow handoff datapath before it answers (an
// install no longer waits for the agent's timer), and that telling an
// agent that does not run is no error.
func TestCommittedAppliesHandoff(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	releaseWithVIPPort(t, store, 3, "192.0.2.10")
	ho := &recordingHandoff{}
	a := New(Config{Store: store, Announcer: &fakeAnnouncer{ch: make(chan []netip.Prefix, 10)}, Rise: 1, Interval: time.Hour, Handoff: ho})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx, nil)
	sock := serveControl(t, a)
	waitFor(t, "the datapath gets the committed release at start", func() bool {
		fw, _ := ho.last()
		return len(fw.Accept4) == 1 && fw.Accept4[0].Addr.String() == "192.0.2.10"
	})
	releaseWithVIPPort(t, store, 4, "192.0.2.11")
	if err := (Client{Socket: sock}).CommittedIfRunning(ctx); err != nil {
		t.Fatal(err)
	}
	if fw, _ := ho.last(); len(fw.Accept4) != 1 || fw.Accept4[0].Addr.String() != "192.0.2.11" {
		t.Fatalf("after POST /committed the datapath has %+v, want release 4's VIP port", fw.Accept4)
	}
	// The install reloaded the agent before it committed; the status
	// (lbctl status's agent_serial, which a rollout waits for) says the
	// committed release at once, not at the next reload.
	if got := a.Status().Serial; got != 4 {
		t.Errorf("agent serial %d after POST /committed, want 4", got)
	}
	if err := (Client{Socket: sock + ".nope"}).CommittedIfRunning(ctx); err != nil {
		t.Fatalf("no agent running: %v, want no error", err)
	}
}

// countingStore counts the reads of a release's firewall.
type countingStore struct {
	*release.Store
	mu    sync.Mutex
	reads int
}

func (s *countingStore) Firewall(serial uint64) (model.Firewall, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.Firewall(serial)
}

// TestHandoffRereadsOnlyANewRelease: handing the same committed release
// to the datapath again (the refresh every 10 s) re-applies the firewall
// read the first time; a newly committed release is read.
func TestHandoffRereadsOnlyANewRelease(t *testing.T) {
	rs, _ := release.Open(t.TempDir())
	releaseWithVIPPort(t, rs, 3, "192.0.2.10")
	store := &countingStore{Store: rs}
	ho := &recordingHandoff{}
	a := New(Config{Store: store, Announcer: &fakeAnnouncer{}, Handoff: ho})
	for range 3 {
		a.applyHandoff()
	}
	if fw, n := ho.last(); n != 3 || store.reads != 1 || fw.Accept4[0].Addr.String() != "192.0.2.10" {
		t.Fatalf("3 hand-overs of release 3: %d applied, %d reads of its firewall (want 3 and 1), last %+v", n, store.reads, fw.Accept4)
	}
	releaseWithVIPPort(t, rs, 4, "192.0.2.11")
	a.applyHandoff()
	if fw, n := ho.last(); n != 4 || store.reads != 2 || fw.Accept4[0].Addr.String() != "192.0.2.11" {
		t.Fatalf("after release 4: %d applied, %d reads (want 4 and 2), last %+v", n, store.reads, fw.Accept4)
	}
}
