package handoff

import "errors"

// ErrNotSupported is wrapped by Load and Apply when eBPF, tcx, the VXLAN
// driver or the needed privileges are missing: the node then works without
// flow handoff.
var ErrNotSupported = errors.New("flow handoff not supported")

// ErrNotPinnable is wrapped by LoadPinned when the pin directory is not on
// a bpf file system (or cannot be made): the programs can still run
// unpinned (Load), but stop forwarding while the agent restarts.
var ErrNotPinnable = errors.New("flow handoff cannot be pinned")
