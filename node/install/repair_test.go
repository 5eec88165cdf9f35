package install

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/drift"
	"github.com/lbctl/lbctl/node/netlink/netstate"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// observedOf is the observation of a node that runs s exactly.
func observedOf(s *plan.State) *drift.Observed {
	o := &drift.Observed{Firewall: s.Firewall, FirewallExists: true, Units: map[string]drift.Unit{},
		Files: map[string]map[string][]byte{}, DropIns: map[string]bool{}, BirdConf: s.BirdConf}
	for _, v := range s.VIPs {
		o.Units[v.Name] = drift.Unit{Active: true, State: "active/running"}
		o.Files[v.Name] = map[string][]byte{}
		for _, f := range v.Files {
			o.Files[v.Name][f.Path] = f.Data
		}
		for _, a := range v.Addresses {
			o.Addresses.VIPs = append(o.Addresses.VIPs, netstate.HostPrefix(a))
		}
	}
	return o
}

// observations returns an observer that returns obs in turn (the last one
// again when they run out) and counts its calls.
func observations(calls *int, obs ...*drift.Observed) Observer {
	return func(context.Context) (*drift.Observed, error) {
		*calls++
		return obs[min(*calls, len(obs))-1], nil
	}
}

// editedNode installs v1 on a fake node, then edits 192.0.2.10's config
// on it behind lbctl's back. It returns the installer, the fake, the
// release's node state and the observation of the edited node.
func editedNode(t *testing.T) (*Installer, *apply.Fake, string, *drift.Observed) {
	t.Helper()
	f := apply.NewFake()
	in := newInstaller(t, f)
	ctx := context.Background()
	if _, err := in.Install(ctx, mkBundle(1, v1), Options{Node: "lb1"}); err != nil {
		t.Fatal(err)
	}
	clean := f.StateWithoutPIDs()
	r, err := in.Store.Load(1)
	if err != nil {
		t.Fatal(err)
	}
	edited := *r.State.VIP("192.0.2.10")
	edited.Files = []plan.File{{Path: "haproxy.cfg", Data: []byte("a1\n# edited by hand\n")}}
	if err := f.WriteVIP(ctx, &edited); err != nil {
		t.Fatal(err)
	}
	f.Calls, f.CallLog = 0, nil
	obs := observedOf(r.State)
	obs.Files["192.0.2.10"]["haproxy.cfg"] = edited.Files[0].Data
	return in, f, clean, obs
}

func lastLog(t *testing.T, in *Installer) release.LogEntry {
	t.Helper()
	h, err := in.Store.History()
	if err != nil || len(h) == 0 {
		t.Fatalf("install log: %v %v", h, err)
	}
	return h[len(h)-1]
}

func TestRepair(t *testing.T) {
	ctx := context.Background()
	in, f, clean, obs := editedNode(t)
	r, _ := in.Store.Load(1)
	var progress []string
	in.Progress = func(i, total int, op plan.Op) { progress = append(progress, op.String()) }
	calls := 0
	res, err := in.Repair(ctx, observations(&calls, obs, observedOf(r.State)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Drift, []string{"vip 192.0.2.10: haproxy.cfg differs from release 1"}) || res.NoOp || res.Serial != 1 {
		t.Errorf("result %+v", res)
	}
	want := []string{"reload-vip 192.0.2.10", "health-gate [192.0.2.10]"}
	if !slices.Equal(progress, want) {
		t.Errorf("progress %q, want %q", progress, want)
	}
	if got := f.StateWithoutPIDs(); got != clean {
		t.Errorf("after the repair:\n%s\nwant the release's node:\n%s", got, clean)
	}
	if calls != 2 || len(res.Remaining) != 0 {
		t.Errorf("observed %d times, remaining %v: want read before and after, nothing left", calls, res.Remaining)
	}
	if e := lastLog(t, in); e.Op != "repair" || e.Result != "repaired" || e.From != 1 || e.To != 1 {
		t.Errorf("install log: %+v", e)
	}
	if cur, _, _ := in.Store.Current(); cur != 1 {
		t.Errorf("current release %d after a repair", cur)
	}
}

func TestRepairNoDrift(t *testing.T) {
	in, f, _, _ := editedNode(t)
	r, _ := in.Store.Load(1)
	logged, _ := in.Store.History()
	calls := 0
	res, err := in.Repair(context.Background(), observations(&calls, observedOf(r.State)), Options{})
	if err != nil || !res.NoOp || !res.Plan.Empty() || len(res.Drift) != 0 {
		t.Fatalf("no drift: %+v %v", res, err)
	}
	if f.Calls != 0 || calls != 1 {
		t.Errorf("no drift: %d host calls %v, %d observations", f.Calls, f.CallLog, calls)
	}
	if h, _ := in.Store.History(); len(h) != len(logged) {
		t.Errorf("no drift logged: %+v", h[len(h)-1])
	}
}

func TestRepairDryRun(t *testing.T) {
	in, f, _, obs := editedNode(t)
	before := f.StateWithoutPIDs()
	calls := 0
	res, err := in.Repair(context.Background(), observations(&calls, obs), Options{DryRun: true})
	if err != nil || len(res.Plan.Steps) != 2 || len(res.Drift) != 1 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if f.Calls != 0 || f.StateWithoutPIDs() != before {
		t.Errorf("dry run changed the node: %v", f.CallLog)
	}
}

// TestRepairRolledBack: the repaired VIP does not get healthy, so the
// repair is undone: the edited config is back, the log says so.
func TestRepairRolledBack(t *testing.T) {
	in, f, _, obs := editedNode(t)
	edited := f.StateWithoutPIDs()
	f.Unhealthy["192.0.2.10"] = true
	calls := 0
	_, err := in.Repair(context.Background(), observations(&calls, obs), Options{})
	if !errors.Is(err, apply.ErrRolledBack) || !strings.Contains(err.Error(), "health-gate") {
		t.Fatalf("repair of a VIP that never gets healthy: %v", err)
	}
	if got := f.StateWithoutPIDs(); got != edited {
		t.Errorf("after the undo:\n%s\nwant the node as it was:\n%s", got, edited)
	}
	if e := lastLog(t, in); e.Op != "repair" || e.Result != "rolled-back" || !strings.Contains(e.Error, "not healthy") {
		t.Errorf("install log: %+v", e)
	}
}

func TestRepairRefuses(t *testing.T) {
	ctx := context.Background()
	in, f, _, obs := editedNode(t)
	// A node it cannot read completely is not repaired.
	failing := func(context.Context) (*drift.Observed, error) {
		return obs, errors.New("units: dbus: connection refused")
	}
	if _, err := in.Repair(ctx, failing, Options{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("partial observation: %v", err)
	}
	// Another install holds the lock.
	unlock, err := in.Store.Lock(false)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	if _, err := in.Repair(ctx, observations(&calls, obs), Options{}); !errors.Is(err, release.ErrLocked) {
		t.Errorf("locked: %v", err)
	}
	unlock()
	if f.Calls != 0 || calls != 0 {
		t.Errorf("refused repairs touched the node: %v, %d observations", f.CallLog, calls)
	}
	// Nothing installed.
	empty := newInstaller(t, apply.NewFake())
	if _, err := empty.Repair(ctx, observations(&calls, obs), Options{}); err == nil || !strings.Contains(err.Error(), "no release") {
		t.Errorf("no release: %v", err)
	}
}

// TestRepairIncomplete: drift the repair could not remove is reported and
// logged.
func TestRepairIncomplete(t *testing.T) {
	in, _, _, obs := editedNode(t)
	calls := 0
	res, err := in.Repair(context.Background(), observations(&calls, obs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Remaining, res.Drift) {
		t.Errorf("remaining %v, want %v", res.Remaining, res.Drift)
	}
	if e := lastLog(t, in); e.Result != "incomplete" || !strings.Contains(e.Error, "haproxy.cfg differs") {
		t.Errorf("install log: %+v", e)
	}
}
