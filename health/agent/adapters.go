package agent

import (
	"context"
	"fmt"
	"net/netip"

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
// (the install's health gate); the agent uses UnitWatch instead.
type Units struct {
	Manager systemd.Manager
}

// Active implements health.Units.
func (u Units) Active(ctx context.Context, vip string) (bool, error) {
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
}

// UpCount implements health.Backends.
func (s Stats) UpCount(ctx context.Context, vip string) (map[string]int, error) {
	servers, err := haproxy.Stats(ctx, s.Socket(vip))
	if err != nil {
		return nil, err
	}
	return haproxy.UpCount(servers), nil
}

// UpAndStarting implements health.StartingBackends: a server waiting for
// its first check (INI, right after a reload) is neither up nor down.
func (s Stats) UpAndStarting(ctx context.Context, vip string) (up, starting map[string]int, err error) {
	servers, err := haproxy.Stats(ctx, s.Socket(vip))
	if err != nil {
		return nil, nil, err
	}
	return haproxy.UpCount(servers), haproxy.StartingCount(servers), nil
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
	out := make(chan ListenerEvent, 64)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-p.Events():
				if !ok {
					return
				}
				select {
				case out <- ListenerEvent{Addr: ev.Addr, Up: ev.Up, At: ev.Time}:
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
