package systemd

import (
	"context"
	"fmt"
	"path"
	"sync"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// UnitWatch keeps the ActiveState of every unit matching a glob pattern
// from systemd's PropertiesChanged signals, so that asking whether a unit is
// active costs no D-Bus call: one ListUnitsByPatterns at the start and then
// every Resync interval (a safety net against a lost signal), plus one after
// the signal channel overflowed. A unit systemd has not loaded is inactive.
type UnitWatch struct {
	pattern string
	conn    *sdbus.Conn

	mu     sync.Mutex
	states map[string]string // unit -> ActiveState
	err    error             // last resync error
	lists  uint64
	notify func(unit, state string)
}

// Notify makes the watch call fn, from its own goroutine, whenever a
// signal changes a unit's ActiveState (not on the periodic re-list): the
// agent withdraws a VIP the moment systemd sees its HAProxy's main process
// die, before the worker has even noticed. fn must not block.
func (w *UnitWatch) Notify(fn func(unit, state string)) {
	w.mu.Lock()
	w.notify = fn
	w.mu.Unlock()
}

// WatchResync is how often a UnitWatch re-lists its units.
const WatchResync = 30 * time.Second

// WatchUnits starts watching the units matching pattern (e.g.
// "lb-haproxy@*.service") until ctx ends. It returns after the first list.
func (d *DBus) WatchUnits(ctx context.Context, pattern string) (*UnitWatch, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("watch %s: %w", pattern, err)
	}
	w := &UnitWatch{pattern: pattern, conn: d.conn, states: map[string]string{}}
	updates := make(chan *sdbus.PropertiesUpdate, 1024)
	overflow := make(chan error, 1)
	// Signals first, then the list: a change between the two is seen
	// twice rather than missed.
	d.conn.SetPropertiesSubscriber(updates, overflow)
	// On systemd's private socket every signal is sent anyway; on a bus
	// Subscribe asks for them.
	_ = d.conn.Subscribe()
	if err := w.resync(ctx); err != nil {
		d.conn.SetPropertiesSubscriber(nil, nil)
		return nil, err
	}
	go w.run(ctx, updates, overflow)
	return w, nil
}

func (w *UnitWatch) run(ctx context.Context, updates <-chan *sdbus.PropertiesUpdate, overflow <-chan error) {
	t := time.NewTicker(WatchResync)
	defer t.Stop()
	defer w.conn.SetPropertiesSubscriber(nil, nil)
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-updates:
			w.apply(u)
		case <-overflow:
			// An update was dropped: re-list after the queued ones.
			for len(updates) > 0 {
				w.apply(<-updates)
			}
			_ = w.resync(ctx)
		case <-t.C:
			_ = w.resync(ctx)
		}
	}
}

func (w *UnitWatch) apply(u *sdbus.PropertiesUpdate) {
	if ok, _ := path.Match(w.pattern, u.UnitName); !ok {
		return
	}
	v, ok := u.Changed["ActiveState"]
	if !ok {
		return
	}
	s, ok := v.Value().(string)
	if !ok {
		return
	}
	w.mu.Lock()
	old := w.states[u.UnitName]
	w.states[u.UnitName] = s
	fn := w.notify
	w.mu.Unlock()
	if fn != nil && old != s {
		fn(u.UnitName, s)
	}
}

// resync lists the matching units once.
func (w *UnitWatch) resync(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	units, err := w.conn.ListUnitsByPatternsContext(lctx, nil, []string{w.pattern})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lists++
	if err != nil {
		w.err = fmt.Errorf("list %s: %w", w.pattern, err)
		return w.err
	}
	w.err = nil
	states := make(map[string]string, len(units))
	for _, u := range units {
		states[u.Name] = u.ActiveState
	}
	w.states = states
	return nil
}

// Active reports whether the unit is active (or reloading). The error is
// that of the last re-list, if it failed.
func (w *UnitWatch) Active(unit string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.states[unit]
	return UnitState{ActiveState: s}.Active(), w.err
}

// ActiveState returns the unit's ActiveState as last seen ("" for a unit
// systemd has not loaded).
func (w *UnitWatch) ActiveState(unit string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.states[unit]
}

// Lists counts the ListUnitsByPatterns calls made so far.
func (w *UnitWatch) Lists() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lists
}
