package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/lbctl/lbctl/bpf"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/haproxy"
	"github.com/lbctl/lbctl/systemd"
)

// Sockets lists listeners through an eBPF probe or sock_diag, in the
// calling thread's network namespace (NetNSFD -1) or another one.
type Sockets struct {
	Lister  bpf.Lister
	NetNSFD int
}

// Listeners implements health.Sockets.
func (s Sockets) Listeners(context.Context) ([]health.Listener, error) {
	ls, err := s.Lister.Listeners(s.NetNSFD)
	if err != nil {
		return nil, err
	}
	out := make([]health.Listener, len(ls))
	for i, l := range ls {
		out[i] = health.Listener{Addr: l.Addr, Backlog: l.Backlog, MaxBacklog: l.MaxBacklog}
	}
	return out, nil
}

// Units tells unit state through systemd, one D-Bus call per question
// (the install's health gate); the agent uses UnitWatch instead. A manager
// that can read the ActiveState property alone (systemd.DBus) is asked
// for it: the gate asks about every VIP every round, and a full State
// reads every property of the unit and its service.
type Units struct {
	Manager systemd.Manager
}

// Active implements health.Units.
func (u Units) Active(ctx context.Context, vip string) (bool, error) {
	if m, ok := u.Manager.(interface {
		ActiveState(ctx context.Context, unit string) (string, error)
	}); ok {
		st, err := m.ActiveState(ctx, systemd.UnitName(vip))
		return systemd.UnitState{ActiveState: st}.Active(), err
	}
	st, err := u.Manager.State(ctx, systemd.UnitName(vip))
	if err != nil {
		return false, err
	}
	return st.Active(), nil
}

// UnitWatch tells unit state from systemd's signals (systemd.UnitWatch):
// no D-Bus call per VIP and evaluation.
type UnitWatch struct {
	Watch *systemd.UnitWatch
}

// Active implements health.Units.
func (u UnitWatch) Active(_ context.Context, vip string) (bool, error) {
	return u.Watch.Active(systemd.UnitName(vip))
}

// Stats counts backend servers up through each VIP's admin socket,
// <RuntimeRoot>/<vip>/admin.sock.
type Stats struct {
	// Socket returns the admin socket of a VIP.
	Socket func(vip string) string
	// Workers, when set, learns at each read which processes serve the
	// VIP (the agent's Processes).
	Workers *Workers
}

// UpCount implements health.Backends.
func (s Stats) UpCount(ctx context.Context, vip string) (map[string]int, error) {
	up, _, err := s.UpAndStarting(ctx, vip)
	return up, err
}

// UpAndStarting implements health.StartingBackends: a server waiting for
// its first check (INI, right after a reload) is neither up nor down.
func (s Stats) UpAndStarting(ctx context.Context, vip string) (up, starting map[string]int, err error) {
	servers, pid, err := haproxy.StatsFrom(ctx, s.Socket(vip))
	if err != nil {
		return nil, nil, err
	}
	if s.Workers != nil && pid > 0 {
		s.Workers.learn(vip, pid)
	}
	return haproxy.UpCount(servers), haproxy.StartingCount(servers), nil
}

// Workers remembers, per VIP, the HAProxy processes that serve it, as
// learned from the process listening on its admin socket at each read of
// its state (Stats), and tells whether they are stopped: it implements
// Processes with one pread of each worker's /proc/<pid>/stat, kept open.
type Workers struct {
	// Proc is where /proc is mounted (default haproxy.ProcRoot).
	Proc  string
	mu    sync.Mutex
	byVIP map[string][]*haproxy.Stat
}

func (w *Workers) proc() string {
	if w.Proc == "" {
		return haproxy.ProcRoot
	}
	return w.Proc
}

// learn records the workers of the HAProxy listening with pid.
func (w *Workers) learn(vip string, pid int) {
	pids, err := haproxy.Workers(w.proc(), pid)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byVIP == nil {
		w.byVIP = map[string][]*haproxy.Stat{}
	}
	old := w.byVIP[vip]
	var keep []*haproxy.Stat
	for _, p := range pids {
		i := slices.IndexFunc(old, func(s *haproxy.Stat) bool { return s != nil && s.PID() == p })
		if i >= 0 {
			keep, old[i] = append(keep, old[i]), nil
			continue
		}
		if s, err := haproxy.OpenStat(w.proc(), p); err == nil {
			keep = append(keep, s)
		}
	}
	for _, s := range old {
		if s != nil {
			s.Close()
		}
	}
	if err != nil || len(keep) == 0 {
		delete(w.byVIP, vip) // cannot tell
		return
	}
	w.byVIP[vip] = keep
}

// Stopped implements Processes: every known worker of the VIP is stopped.
// Workers that exited are forgotten; none known means it cannot tell.
func (w *Workers) Stopped(vip string) ([]int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.byVIP[vip]
	var pids []int
	stopped, alive := 0, ws[:0]
	for _, s := range ws {
		st, err := s.Stopped()
		if errors.Is(err, haproxy.ErrGone) {
			s.Close()
			continue
		}
		alive, pids = append(alive, s), append(pids, s.PID())
		if err == nil && st {
			stopped++
		}
	}
	if len(alive) == 0 {
		delete(w.byVIP, vip)
	} else {
		w.byVIP[vip] = alive
	}
	return pids, len(alive) > 0 && stopped == len(alive)
}

// Responds implements Runtime: HAProxy answers "show info" on the VIP's
// admin socket before ctx ends.
func (s Stats) Responds(ctx context.Context, vip string) error {
	out, err := haproxy.Command(ctx, s.Socket(vip), "show info")
	if err != nil {
		return err
	}
	if out == "" {
		return fmt.Errorf("haproxy socket %s: empty answer to show info", s.Socket(vip))
	}
	return nil
}

// WatchEvents points the probe at the listeners of the announceable VIPs
// and forwards its events; it returns the channel the agent reads.
func WatchEvents(ctx context.Context, p *bpf.Probe, netns uint64) <-chan ListenerEvent {
	return forward(ctx, p.Events(), 64, false, func(ev bpf.Event) ListenerEvent {
		return ListenerEvent{Addr: ev.Addr, Up: ev.Up, At: ev.Time}
	})
}

// WatchSignals forwards the probe's stop and continue signals (nil when
// it has none: bpf.Probe.SignalsErr). A signal that finds the channel
// full is dropped: one pending is enough to make the agent look.
func WatchSignals(ctx context.Context, p *bpf.Probe) <-chan StopSignal {
	in := p.Signals()
	if in == nil {
		return nil
	}
	return forward(ctx, in, 16, true, func(s bpf.Signal) StopSignal { return StopSignal{Sig: s.Sig, At: s.Time} })
}

// forward converts what arrives on in and sends it on the returned channel
// (of size n) until ctx ends or in closes; with drop, what finds the
// channel full is dropped rather than waited for.
func forward[In, Out any](ctx context.Context, in <-chan In, n int, drop bool, conv func(In) Out) <-chan Out {
	out := make(chan Out, n)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case v, ok := <-in:
				if !ok {
					return
				}
				if drop {
					select {
					case out <- conv(v):
					default:
					}
					continue
				}
				select {
				case out <- conv(v):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// Watcher is told the listeners the agent expects, so a kernel-side filter
// can be set (bpf.Probe.Watch).
type Watcher interface {
	Watch(addrs []netip.AddrPort, netns uint64) error
}

// watch updates the kernel filter after a reload.
func (a *Agent) watch() error {
	if a.cfg.Watcher == nil {
		return nil
	}
	a.mu.Lock()
	var addrs []netip.AddrPort
	for _, s := range a.order {
		addrs = append(addrs, s.expected...)
	}
	a.mu.Unlock()
	if err := a.cfg.Watcher.Watch(addrs, a.cfg.WatchNetNS); err != nil {
		return fmt.Errorf("watch listeners: %w", err)
	}
	return nil
}

// ListenBackendEvents listens on path for the state events of every VIP's
// HAProxy (health/haproxy.Events) and forwards them until ctx ends; bad is
// told about messages that do not parse (nil: ignored). The returned
// function closes the socket and waits for the reader.
func ListenBackendEvents(ctx context.Context, path string, bad func(error)) (<-chan BackendEvent, func(), error) {
	evs, err := haproxy.ListenEvents(path)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan BackendEvent, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		err := evs.Run(ctx, func(e haproxy.Event) {
			select {
			case out <- BackendEvent{VIP: e.Tag, Text: e.Text}:
			case <-ctx.Done():
			}
		}, bad)
		if err != nil && bad != nil {
			bad(err)
		}
	}()
	return out, func() {
		cancel()
		<-done
		evs.Close()
	}, nil
}
