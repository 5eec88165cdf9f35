package agent

import (
	"context"
	"testing"

	"github.com/lbctl/lbctl/systemd"
)

// oneProperty is a systemd Manager that answers ActiveState and fails the
// whole-unit State read, to show which one Units uses.
type oneProperty struct {
	*systemd.Fake
	states map[string]string
	asked  []string
}

func (o *oneProperty) ActiveState(_ context.Context, unit string) (string, error) {
	o.asked = append(o.asked, unit)
	return o.states[unit], nil
}

func (o *oneProperty) State(context.Context, string) (systemd.UnitState, error) {
	panic("the gate read every property of a unit")
}

// TestUnitsReadOneProperty: Units (the install's health gate) reads one
// property per VIP when systemd can (reloading counts as active, as in
// systemd.UnitState.Active), and every property through State otherwise.
func TestUnitsReadOneProperty(t *testing.T) {
	m := &oneProperty{Fake: systemd.NewFake(), states: map[string]string{
		systemd.UnitName("192.0.2.10"): "active", systemd.UnitName("192.0.2.11"): "reloading",
		systemd.UnitName("192.0.2.12"): "activating"}}
	u := Units{Manager: m}
	for vip, want := range map[string]bool{"192.0.2.10": true, "192.0.2.11": true, "192.0.2.12": false, "192.0.2.13": false} {
		if got, err := u.Active(context.Background(), vip); err != nil || got != want {
			t.Errorf("%s: active %v, %v; want %v", vip, got, err, want)
		}
	}
	if len(m.asked) != 4 {
		t.Errorf("asked %v", m.asked)
	}
	// A manager without ActiveState: its State.
	f := systemd.NewFake()
	if got, err := (Units{Manager: f}).Active(context.Background(), "192.0.2.10"); err != nil || got {
		t.Errorf("unknown unit on a fake: active %v, %v", got, err)
	}
}
