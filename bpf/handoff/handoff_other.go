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

// LoadPinned reports that flow handoff needs Linux.
func LoadPinned(string) (*Datapath, error) { return Load() }

// Pinned is false.
func (d *Datapath) Pinned() bool { return false }

// Remove does nothing.
func (d *Datapath) Remove() error { return nil }

// RemovePinned does nothing off Linux.
func RemovePinned(string) error { return nil }
