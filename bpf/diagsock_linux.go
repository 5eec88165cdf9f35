package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DiagSocket lists listeners like SockDiag, through one NETLINK_SOCK_DIAG
// socket kept open in the namespace it was opened in and one receive
// buffer reused by every listing: for a caller that lists every few
// hundred milliseconds (the agent's socket watcher). SockDiag opens a
// socket per listing, through the netpoller, and allocates every message;
// at 150 listeners that was 0.8 ms of CPU per listing, most of it not the
// kernel's. It is safe for concurrent use; listings are serialised.
type DiagSocket struct {
	mu    sync.Mutex
	fd    int
	netns uint64
	seq   uint32
	buf   []byte
	req   []byte
	// last is how many listeners the previous listing had.
	last int
}

var _ Lister = (*DiagSocket)(nil)

// OpenDiagSocket opens the socket in the calling thread's network
// namespace. Close releases it.
func OpenDiagSocket() (*DiagSocket, error) {
	netns, err := NetNSInode(-1)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: socket: %w", err)
	}
	// A dump is answered at once; the timeout only bounds a kernel that
	// does not answer, since these reads block their thread.
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag: receive timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag: bind: %w", err)
	}
	return &DiagSocket{fd: fd, netns: netns, buf: make([]byte, 64<<10),
		req: make([]byte, unix.NLMSG_HDRLEN+inetDiagReqV2Size)}, nil
}

// Close closes the socket.
func (d *DiagSocket) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Listeners implements Lister for the namespace the socket was opened in
// (netnsFD -1); another namespace is listed by SockDiag.
func (d *DiagSocket) Listeners(netnsFD int) ([]Listener, error) {
	if netnsFD >= 0 {
		return SockDiag{}.Listeners(netnsFD)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil, errors.New("sock_diag: socket closed")
	}
	out := make([]Listener, 0, d.last+d.last/8+8)
	for _, family := range []uint8{afInet, afInet6} {
		var err error
		if out, err = d.dump(family, out); err != nil {
			return nil, fmt.Errorf("sock_diag: dump family %d: %w", family, err)
		}
	}
	d.last = len(out)
	return out, nil
}

// dump sends one TCP LISTEN dump request of family and appends the
// listeners of its answer to out.
func (d *DiagSocket) dump(family uint8, out []Listener) ([]Listener, error) {
	d.seq++
	h := d.req[:unix.NLMSG_HDRLEN]
	binary.NativeEndian.PutUint32(h[0:], uint32(len(d.req)))
	binary.NativeEndian.PutUint16(h[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(h[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(h[8:], d.seq)
	binary.NativeEndian.PutUint32(h[12:], 0)
	copy(d.req[unix.NLMSG_HDRLEN:], inetDiagListenReq(family))
	if err := d.send(); err != nil {
		return out, fmt.Errorf("send: %w", err)
	}
	for {
		n, err := d.receive()
		if err != nil {
			return out, fmt.Errorf("receive: %w", err)
		}
		done, err := d.parse(d.buf[:n], &out)
		if err != nil || done {
			return out, err
		}
	}
}

// send sends the request to the kernel (the bound socket's default
// destination). The kernel answers a dump within the call, so neither send
// nor receive waits: both are raw system calls, which the Go runtime does
// not track. A tracked call wakes the runtime's monitor thread, which then
// polls every 20 µs while the call lasts and hands the processor to
// another thread when it lasts longer than that (a dump of a few hundred
// listeners takes 0.1-0.4 ms): more CPU than the dump itself.
func (d *DiagSocket) send() error {
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(d.fd), uintptr(unsafe.Pointer(&d.req[0])),
			uintptr(len(d.req)), 0, 0, 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

// receive reads one datagram of the answer without waiting; when none is
// there yet (which a dump does not do), it waits through an ordinary
// call, bounded by the socket's receive timeout.
func (d *DiagSocket) receive() (int, error) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(d.fd), uintptr(unsafe.Pointer(&d.buf[0])),
			uintptr(len(d.buf)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
			return n, err
		}
		return 0, e
	}
}

// parse appends the listeners of one datagram of netlink messages to out
// and reports whether the dump ended (NLMSG_DONE).
func (d *DiagSocket) parse(b []byte, out *[]Listener) (done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		typ := binary.NativeEndian.Uint16(b[4:])
		seq := binary.NativeEndian.Uint32(b[8:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, fmt.Errorf("malformed netlink message (length %d of %d)", l, len(b))
		}
		payload := b[unix.NLMSG_HDRLEN:l]
		b = b[min(nlmAlign(l), len(b)):]
		if seq != d.seq {
			continue // an answer to an earlier, abandoned request
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(payload) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(payload)); e != 0 {
					return false, unix.Errno(-e)
				}
			}
			return true, nil
		}
		ls, err := decodeInetDiagMsg(payload)
		if err != nil {
			return false, err
		}
		if ls.Addr.IsValid() {
			ls.NetNS = d.netns
			*out = append(*out, ls)
		}
	}
	return false, nil
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
