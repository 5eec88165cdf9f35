package handoff

import "errors"

// ErrNotSupported is wrapped by Load and Apply when eBPF, tcx, the VXLAN
// driver or the needed privileges are missing: the node then works without
// flow handoff.
var ErrNotSupported = errors.New("flow handoff not supported")
