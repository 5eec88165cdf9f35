//go:build !linux

package bpf

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"
)

var errOS = fmt.Errorf("socket probes on %s: %w", runtime.GOOS, ErrNotSupported)

// Probe is only available on Linux; elsewhere Load fails with ErrNotSupported.
type Probe struct{}

// Load returns an error wrapping ErrNotSupported outside Linux.
func Load() (*Probe, error) { return nil, errOS }

// Listeners returns ErrNotSupported outside Linux.
func (*Probe) Listeners(int) ([]Listener, error) { return nil, errOS }

// Watch returns ErrNotSupported outside Linux.
func (*Probe) Watch([]netip.AddrPort, uint64) error { return errOS }

// Events returns a nil channel outside Linux.
func (*Probe) Events() <-chan Event { return nil }

// Dropped returns ErrNotSupported outside Linux.
func (*Probe) Dropped() (uint64, error) { return 0, errOS }

// Close does nothing outside Linux.
func (*Probe) Close() error { return nil }

// SockDiag is only available on Linux.
type SockDiag struct{}

// Listeners returns ErrNotSupported outside Linux.
func (SockDiag) Listeners(int) ([]Listener, error) { return nil, errOS }

// NetNSInode returns ErrNotSupported outside Linux.
func NetNSInode(int) (uint64, error) { return 0, errOS }

// Monotonic returns the time since an arbitrary point; outside Linux it is
// not comparable with kernel timestamps.
func Monotonic() time.Duration { return time.Since(start) }

var start = time.Now()

// Signals returns a nil channel outside Linux.
func (*Probe) Signals() <-chan Signal { return nil }

// SignalsErr returns ErrNotSupported outside Linux.
func (*Probe) SignalsErr() error { return errOS }
