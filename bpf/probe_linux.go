package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Probe holds the loaded eBPF programs: the listener iterator and the
// listen-state watcher. It is safe for concurrent use.
type Probe struct {
	objs   probeObjects
	iter   *link.Iter
	tp     link.Link
	rd     *ringbuf.Reader
	events chan Event

	// The stop-signal watcher (nil sigs when it could not attach; sigErr
	// says why).
	sigTP  link.Link
	sigRd  *ringbuf.Reader
	sigs   chan Signal
	sigErr error

	mu      sync.Mutex // serialises Watch
	closing sync.Once
	done    chan struct{}
	wg      sync.WaitGroup
}

var _ Lister = (*Probe)(nil)

const (
	listenRecSize = int(unsafe.Sizeof(probeLbListenRec{}))
	eventSize     = int(unsafe.Sizeof(probeLbListenEvent{}))
)

// Load loads the committed eBPF objects, attaches the iterator and the
// tracepoint program and starts delivering Events. An empty watch set
// produces no events. Close releases everything.
//
// The returned error wraps ErrNotSupported when the kernel lacks eBPF, BTF
// or a needed feature, or the process lacks CAP_BPF/CAP_PERFMON.
func Load() (*Probe, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify("remove memlock limit", err)
	}
	p := &Probe{events: make(chan Event, 256), done: make(chan struct{})}
	if err := loadProbeObjects(&p.objs, nil); err != nil {
		return nil, classify("load socket probes", err)
	}
	var err error
	if p.iter, err = link.AttachIter(link.IterOptions{Program: p.objs.IterListen}); err != nil {
		p.objs.Close()
		return nil, classify("attach tcp iterator", err)
	}
	if p.tp, err = link.AttachTracing(link.TracingOptions{Program: p.objs.WatchState}); err != nil {
		p.iter.Close()
		p.objs.Close()
		return nil, classify("attach inet_sock_set_state", err)
	}
	if p.rd, err = ringbuf.NewReader(p.objs.Events); err != nil {
		p.tp.Close()
		p.iter.Close()
		p.objs.Close()
		return nil, classify("open event ring buffer", err)
	}
	p.wg.Add(1)
	go p.readEvents()
	p.attachSignals()
	return p, nil
}

// attachSignals attaches the stop-signal watcher; without it the probe
// still lists and watches listeners (SignalsErr says why).
func (p *Probe) attachSignals() {
	tp, err := link.AttachTracing(link.TracingOptions{Program: p.objs.WatchSignal})
	if err != nil {
		p.sigErr = classify("attach signal_generate", err)
		return
	}
	rd, err := ringbuf.NewReader(p.objs.Signals)
	if err != nil {
		tp.Close()
		p.sigErr = classify("open signal ring buffer", err)
		return
	}
	p.sigTP, p.sigRd, p.sigs = tp, rd, make(chan Signal, 64)
	p.wg.Add(1)
	go p.readSignals()
}

// classify wraps err with ErrNotSupported when it means the kernel or the
// privileges cannot run the probes (as opposed to a transient failure).
func classify(what string, err error) error {
	var verr *ebpf.VerifierError
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) ||
		errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOSYS) ||
		errors.Is(err, btf.ErrNotFound) || errors.Is(err, btf.ErrNotSupported) ||
		errors.As(err, &verr) {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			// Say what operators can change: the unit's capabilities.
			return fmt.Errorf("%s: %w: needs CAP_BPF and CAP_PERFMON: %w", what, ErrNotSupported, err)
		}
		return fmt.Errorf("%s: %w: %w", what, ErrNotSupported, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Listeners lists the TCP listening sockets of the network namespace open at
// netnsFD (-1: the calling thread's) with one iterator read.
func (p *Probe) Listeners(netnsFD int) ([]Listener, error) {
	var r io.ReadCloser
	open := func() (err error) {
		r, err = p.iter.Open()
		return err
	}
	var err error
	if netnsFD < 0 {
		err = open()
	} else {
		// The iterator sees the namespace of the thread that opens it.
		err = inNetNS(netnsFD, open)
	}
	if err != nil {
		return nil, fmt.Errorf("open tcp iterator: %w", err)
	}
	defer r.Close()
	buf, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("read tcp iterator: %w", err)
	}
	return decodeListenRecs(buf)
}

func readAll(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
	}
}

func decodeListenRecs(buf []byte) ([]Listener, error) {
	if len(buf)%listenRecSize != 0 {
		return nil, fmt.Errorf("tcp iterator returned %d bytes, not a multiple of %d", len(buf), listenRecSize)
	}
	out := make([]Listener, 0, len(buf)/listenRecSize)
	for off := 0; off < len(buf); off += listenRecSize {
		var rec probeLbListenRec
		if _, err := binary.Decode(buf[off:off+listenRecSize], binary.NativeEndian, &rec); err != nil {
			return nil, fmt.Errorf("decode listener record: %w", err)
		}
		ap, ok := addrFrom(rec.Family, rec.Addr, rec.Port)
		if !ok {
			continue
		}
		out = append(out, Listener{
			Addr: ap, Backlog: rec.Backlog, MaxBacklog: rec.MaxBacklog,
			NetNS: rec.Netns, Cookie: rec.Cookie,
		})
	}
	return out, nil
}

// Watch replaces the watch set: from now on only these addresses produce
// events. netns is a namespace inode (NetNSInode); 0 matches listeners in
// any namespace. Addresses match exactly: a listener bound to 0.0.0.0:443
// or [::]:443 is watched by adding that wildcard address. Watch(nil, 0)
// stops all events.
func (p *Probe) Watch(addrs []netip.AddrPort, netns uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make(map[probeLbWatchKey]bool, len(addrs))
	for _, ap := range addrs {
		if !ap.IsValid() {
			return fmt.Errorf("watch: invalid address %v", ap)
		}
		k := probeLbWatchKey{Netns: netns}
		k.Family, k.Addr, k.Port = addrTo(ap)
		want[k] = true
	}
	var (
		k     probeLbWatchKey
		v     uint8
		stale []probeLbWatchKey
	)
	it := p.objs.Watch.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("watch: list current set: %w", err)
	}
	var errs []error
	if err := p.objs.SignalNetns.Put(uint32(0), netns); err != nil {
		errs = append(errs, fmt.Errorf("watch stop signals in netns %d: %w", netns, err))
	}
	// Add before delete, so an address kept in the set is never unwatched.
	for k := range want {
		if err := p.objs.Watch.Put(k, uint8(1)); err != nil {
			errs = append(errs, fmt.Errorf("watch %s: %w", keyString(k), err))
		}
	}
	for _, k := range stale {
		if err := p.objs.Watch.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("unwatch %s: %w", keyString(k), err))
		}
	}
	return errors.Join(errs...)
}

func keyString(k probeLbWatchKey) string {
	ap, _ := addrFrom(k.Family, k.Addr, k.Port)
	return fmt.Sprintf("%s netns %d", ap, k.Netns)
}

// Events returns the channel of listener events for the watch set. It is
// closed by Close or when reading the ring buffer fails. Events are not
// dropped in user space: a slow reader makes the kernel ring buffer fill,
// and the kernel then counts lost events (Dropped).
func (p *Probe) Events() <-chan Event { return p.events }

// Dropped returns how many events the kernel could not queue because the
// ring buffer was full. After a drop, callers should re-list (Listeners).
func (p *Probe) Dropped() (uint64, error) {
	var n uint64
	if err := p.objs.Dropped.Lookup(uint32(0), &n); err != nil {
		return 0, fmt.Errorf("read dropped events: %w", err)
	}
	return n, nil
}

func (p *Probe) readEvents() {
	defer p.wg.Done()
	defer close(p.events)
	var rec ringbuf.Record
	for {
		if err := p.rd.ReadInto(&rec); err != nil {
			return
		}
		ev, ok := decodeEvent(rec.RawSample)
		if !ok {
			continue
		}
		select {
		case p.events <- ev:
		case <-p.done:
			return
		}
	}
}

func decodeEvent(b []byte) (Event, bool) {
	var raw probeLbListenEvent
	if len(b) < eventSize {
		return Event{}, false
	}
	if _, err := binary.Decode(b[:eventSize], binary.NativeEndian, &raw); err != nil {
		return Event{}, false
	}
	ap, ok := addrFrom(raw.Family, raw.Addr, raw.Port)
	if !ok {
		return Event{}, false
	}
	mono := time.Duration(raw.TsNs)
	return Event{
		Addr: ap, NetNS: raw.Netns, Cookie: raw.Cookie,
		Up:   raw.Newstate == tcpListen,
		Mono: mono, Time: monoToWall(mono),
	}, true
}

// Monotonic returns the current CLOCK_MONOTONIC time, the clock of Event.Mono.
func Monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

func monoToWall(mono time.Duration) time.Time {
	now := time.Now()
	return now.Add(mono - Monotonic())
}

// Signals returns the channel of stop and continue signals sent to
// processes of the namespace Watch named (nil when the watcher could not
// attach: SignalsErr). It is closed by Close. A full channel drops
// signals: each is a hint to look at the processes, and the next one
// (or a slower poll) looks again.
func (p *Probe) Signals() <-chan Signal { return p.sigs }

// SignalsErr says why Signals is nil.
func (p *Probe) SignalsErr() error { return p.sigErr }

func (p *Probe) readSignals() {
	defer p.wg.Done()
	defer close(p.sigs)
	var rec ringbuf.Record
	for {
		if err := p.sigRd.ReadInto(&rec); err != nil {
			return
		}
		var raw probeLbSignalEvent
		if _, err := binary.Decode(rec.RawSample, binary.NativeEndian, &raw); err != nil {
			continue
		}
		mono := time.Duration(raw.TsNs)
		select {
		case p.sigs <- Signal{PID: int(raw.Tgid), Sig: syscall.Signal(raw.Sig), Time: monoToWall(mono)}:
		case <-p.done:
			return
		default:
		}
	}
}

// Close detaches the programs, closes Events and Signals and frees the
// kernel objects.
func (p *Probe) Close() error {
	var errs []error
	p.closing.Do(func() {
		close(p.done)
		errs = append(errs, p.rd.Close())
		if p.sigRd != nil {
			errs = append(errs, p.sigRd.Close())
		}
		p.wg.Wait()
		if p.sigTP != nil {
			errs = append(errs, p.sigTP.Close())
		}
		errs = append(errs, p.tp.Close(), p.iter.Close(), p.objs.Close())
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close socket probes: %w", err)
	}
	return nil
}
