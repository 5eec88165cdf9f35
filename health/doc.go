// Package health decides, per VIP, whether this node may announce it.
//
// A VIP is healthy when its unit is active, every expected listener is
// present (eBPF socket iterator, or sock_diag when eBPF is not available),
// the accept queue is not saturated, every active probe passes and each of
// its backends has at least its minimum of servers up. Rise and fall counts
// debounce the polled checks; a listener-close event from the kernel marks
// the VIP down at once, without waiting for the next poll.
//
// The package holds the state machine and the evaluation; the agent loop
// (health/agent) drives it and tells BIRD.
package health
