//go:build !linux

package handoff

import "fmt"

// Datapath is unavailable off Linux.
type Datapath struct{}

// Load reports that flow handoff needs Linux.
func Load() (*Datapath, error) {
	return nil, fmt.Errorf("load flow handoff programs: %w: needs Linux", ErrNotSupported)
}

// Apply is never reached: Load fails.
func (d *Datapath) Apply(Config) error { return ErrNotSupported }

// Attached is empty.
func (d *Datapath) Attached() []string { return nil }

// Counters are zero.
func (d *Datapath) Counters() (Counters, error) { return Counters{}, ErrNotSupported }

// Close does nothing.
func (d *Datapath) Close() error { return nil }
