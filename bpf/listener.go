package bpf

import (
	"errors"
	"net/netip"
	"syscall"
	"time"
)

// ErrNotSupported is wrapped by Load when eBPF, BTF or the needed privileges
// are missing; callers fall back to SockDiag.
var ErrNotSupported = errors.New("ebpf socket probes not supported")

// Listener is a TCP socket in the LISTEN state.
type Listener struct {
	// Addr is the local address and port; IPv4 sockets have a 4-byte address,
	// IPv6 sockets (including those bound to ::) a 16-byte one.
	Addr netip.AddrPort
	// Backlog is the number of connections waiting in the accept queue.
	Backlog uint32
	// MaxBacklog is the accept queue limit (the listen(2) backlog, capped by
	// net.core.somaxconn).
	MaxBacklog uint32
	// NetNS is the inode number of the socket's network namespace.
	NetNS uint64
	// Cookie is the kernel's socket cookie (SO_COOKIE), unique while the
	// system runs.
	Cookie uint64
}

// Saturated reports whether the accept queue is full: new connections are
// being dropped or answered with SYN cookies.
func (l Listener) Saturated() bool { return l.MaxBacklog > 0 && l.Backlog >= l.MaxBacklog }

// Lister lists the TCP listeners of one network namespace.
type Lister interface {
	// Listeners returns the listening sockets of the network namespace open
	// at netnsFD (a /proc/PID/ns/net or /run/netns/NAME descriptor), or of the
	// calling thread's namespace when netnsFD is -1.
	Listeners(netnsFD int) ([]Listener, error)
}

// Event reports that a watched listener opened or closed.
//
// Up=false means this socket stopped listening; another socket may still
// listen on the same address (SO_REUSEPORT, an overlapping reload), so a
// health check confirms with Listeners before acting on anything but speed.
type Event struct {
	Addr   netip.AddrPort
	NetNS  uint64
	Cookie uint64
	// Up is true when the socket started listening, false when it closed.
	Up bool
	// Mono is the kernel's CLOCK_MONOTONIC time of the state change.
	Mono time.Duration
	// Time is Mono converted to wall-clock time.
	Time time.Time
}

// Signal is a stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU) or continue
// (SIGCONT) signal sent to a process of the watched network namespace: a
// hint that a process may be about to stop, or to run again. The process
// stops (or not: a handler, a blocked signal) after the signal is sent,
// so /proc tells whether it did.
type Signal struct {
	// PID is the process's ID in the initial PID namespace, which may not
	// be the one the reader sees.
	PID  int
	Sig  syscall.Signal
	Time time.Time
}

const (
	afInet  = 2
	afInet6 = 10

	tcpListen = 10
)

// addrFrom converts a kernel (family, 16-byte address, host-order port)
// triple; ok is false for other families.
func addrFrom(family uint16, addr [16]byte, port uint16) (netip.AddrPort, bool) {
	switch family {
	case afInet:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[:4])), port), true
	case afInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(addr), port), true
	}
	return netip.AddrPort{}, false
}

// addrTo is the inverse of addrFrom. Zones are dropped.
func addrTo(ap netip.AddrPort) (family uint16, addr [16]byte, port uint16) {
	a := ap.Addr().WithZone("")
	if a.Is4() {
		b := a.As4()
		copy(addr[:], b[:])
		return afInet, addr, ap.Port()
	}
	return afInet6, a.As16(), ap.Port()
}
