package traffic

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Target is one VIP's HAProxy.
type Target struct {
	VIP    string
	Socket string
	// Services maps a backend name to the service it serves; a backend
	// not listed gets its name without the ":port" suffix.
	Services map[string]string
}

// Service returns the service label of a backend.
func (t *Target) Service(backend string) string {
	if s, ok := t.Services[backend]; ok && s != "" {
		return s
	}
	if i := strings.LastIndexByte(backend, ':'); i > 0 {
		return backend[:i]
	}
	return backend
}

// Snapshot is one read of a VIP's HAProxy.
type Snapshot struct {
	Target
	At       time.Time
	Duration time.Duration
	// Err is why the read failed (the process is down, the socket is
	// missing); Info and Rows are then empty.
	Err  error
	Info Info
	Rows []Row
}

// Reader reads every VIP's HAProxy with one "show info;show stat" each, at
// most Concurrency at a time, and keeps the result for MaxAge so that close
// scrapes (two Prometheus servers, the status page) cost one read.
type Reader struct {
	// Targets lists the VIPs to read; it is called once per read.
	Targets func() []Target
	// Concurrency bounds the sockets read at once. Default 8.
	Concurrency int
	// MaxAge is how long a read is reused. Default 1s.
	MaxAge time.Duration
	// Timeout bounds one VIP's read. Default 2s.
	Timeout time.Duration

	mu   sync.Mutex
	last []Snapshot
	at   time.Time
	busy chan struct{} // closed when the read under way is done
}

func (r *Reader) defaults() (conc int, maxAge, timeout time.Duration) {
	conc, maxAge, timeout = r.Concurrency, r.MaxAge, r.Timeout
	if conc <= 0 {
		conc = 8
	}
	if maxAge == 0 {
		maxAge = time.Second
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return
}

// Read returns a snapshot of every target, reading the sockets unless the
// last read is younger than MaxAge; concurrent callers share one read.
func (r *Reader) Read(ctx context.Context) []Snapshot {
	_, maxAge, _ := r.defaults()
	for {
		r.mu.Lock()
		if r.last != nil && time.Since(r.at) < maxAge {
			s := r.last
			r.mu.Unlock()
			return s
		}
		if r.busy != nil {
			busy := r.busy
			r.mu.Unlock()
			select {
			case <-busy:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		busy := make(chan struct{})
		r.busy = busy
		r.mu.Unlock()

		s := r.read(ctx)
		r.mu.Lock()
		r.last, r.at, r.busy = s, time.Now(), nil
		r.mu.Unlock()
		close(busy)
		return s
	}
}

// Last returns the last read without reading (nil before the first).
func (r *Reader) Last() []Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *Reader) read(ctx context.Context) []Snapshot {
	conc, _, timeout := r.defaults()
	var targets []Target
	if r.Targets != nil {
		targets = r.Targets()
	}
	out := make([]Snapshot, len(targets))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = ReadOne(ctx, targets[i], timeout)
		}()
	}
	wg.Wait()
	return out
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ReadOne reads one VIP's HAProxy: one connection, one "show info;show
// stat".
func ReadOne(ctx context.Context, t Target, timeout time.Duration) Snapshot {
	start := time.Now()
	s := Snapshot{Target: t, At: start}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufs.Put(buf)
	if err := query(ctx, t.Socket, "show info;show stat\n", buf); err != nil {
		s.Err = err
	} else if info, rows, err := Parse(buf.Bytes()); err != nil {
		s.Err = fmt.Errorf("haproxy socket %s: %w", t.Socket, err)
	} else {
		s.Info, s.Rows = info, rows
	}
	s.Duration = time.Since(start)
	return s
}

func query(ctx context.Context, socket, cmd string, buf *bytes.Buffer) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("haproxy socket %s: %w", socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, cmd); err != nil {
		return fmt.Errorf("haproxy socket %s: %w", socket, err)
	}
	if _, err := buf.ReadFrom(io.LimitReader(c, 16<<20)); err != nil {
		return fmt.Errorf("haproxy socket %s: %w", socket, err)
	}
	return nil
}
