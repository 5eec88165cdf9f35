package health

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeUnits map[string]bool

func (f fakeUnits) Active(_ context.Context, vip string) (bool, error) { return f[vip], nil }

type fakeSockets []Listener

func (f fakeSockets) Listeners(context.Context) ([]Listener, error) { return f, nil }

type fakeBackends map[string]int

func (f fakeBackends) UpCount(context.Context, string) (map[string]int, error) { return f, nil }

func TestEvaluate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	a := netip.MustParseAddrPort(ln.Addr().String())
	v := &VIP{Name: "v1", Probes: []Probe{{Kind: ProbeTCP, Addr: a}},
		Backends: []Backend{{Name: "be_web", MinUp: 2}}}
	good := Deps{Units: fakeUnits{"v1": true}, Sockets: fakeSockets{{Addr: a, Backlog: 0, MaxBacklog: 128}},
		Backends: fakeBackends{"be_web": 2}}
	if r := Evaluate(context.Background(), v, good, nil); !r.OK {
		t.Fatalf("healthy VIP: %v", r.Reasons)
	}
	tests := []struct {
		name string
		mod  func(d *Deps)
		want string
	}{
		{"unit inactive", func(d *Deps) { d.Units = fakeUnits{} }, "unit not active"},
		{"listener missing", func(d *Deps) { d.Sockets = fakeSockets{} }, "no listener on " + a.String()},
		{"accept queue full", func(d *Deps) { d.Sockets = fakeSockets{{Addr: a, Backlog: 128, MaxBacklog: 128}} }, "accept queue of " + a.String() + " full (128/128)"},
		{"backends down", func(d *Deps) { d.Backends = fakeBackends{"be_web": 1} }, "backend be_web: 1 of at least 2 servers up"},
	}
	for _, tt := range tests {
		d := good
		tt.mod(&d)
		r := Evaluate(context.Background(), v, d, nil)
		if r.OK || !strings.Contains(strings.Join(r.Reasons, ";"), tt.want) {
			t.Errorf("%s: %+v, want %q", tt.name, r, tt.want)
		}
	}
	ln.Close()
	if r := Evaluate(context.Background(), v, good, nil); r.OK || !strings.Contains(r.Reasons[0], "probe tcp") {
		t.Errorf("closed listener: %+v", r)
	}
}

func TestGate(t *testing.T) {
	v := &VIP{Name: "v1"}
	units := fakeUnits{"v1": false}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := Gate(ctx, []*VIP{v}, Deps{Units: units}, 2, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "vip v1: not healthy: unit not active") {
		t.Fatalf("gate of a dead VIP: %v", err)
	}
	units["v1"] = true
	start := time.Now()
	if err := Gate(context.Background(), []*VIP{v}, Deps{Units: units}, 3, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("rise 3 at 10 ms passed after %v", d)
	}
}

// slowBackends reports its servers down, and from the second call on blocks
// until the context ends: an evaluation that the gate's deadline cuts short.
type slowBackends struct{ calls int }

func (s *slowBackends) UpCount(ctx context.Context, _ string) (map[string]int, error) {
	s.calls++
	if s.calls > 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return map[string]int{"be_ghost": 0}, nil
}

func TestGateReportsLastCompleteEvaluation(t *testing.T) {
	v := &VIP{Name: "v1", Backends: []Backend{{Name: "be_ghost", MinUp: 1}}}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	b := &slowBackends{}
	err := Gate(ctx, []*VIP{v}, Deps{Backends: b}, 2, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "backend be_ghost: 0 of at least 1 servers up") ||
		strings.Contains(err.Error(), "backends: context deadline exceeded") {
		t.Fatalf("gate cut short by its deadline: %v (after %d evaluations), want the last complete reason", err, b.calls)
	}
}

// countingSockets counts listings and has each VIP's listener.
type countingSockets struct {
	listings atomic.Int32
	ls       []Listener
}

func (c *countingSockets) Listeners(context.Context) ([]Listener, error) {
	c.listings.Add(1)
	return c.ls, nil
}

// gatedUnits holds every Active call until as many run at once as want:
// the gate evaluates the VIPs concurrently, or it never gets there.
type gatedUnits struct {
	want    int32
	running atomic.Int32
	all     chan struct{}
	once    sync.Once
}

func (g *gatedUnits) Active(ctx context.Context, _ string) (bool, error) {
	if g.running.Add(1) == g.want {
		g.once.Do(func() { close(g.all) })
	}
	select {
	case <-g.all:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// TestGateRounds: a gate round lists the listeners once for all its VIPs
// and evaluates them at once (at most gateParallel).
func TestGateRounds(t *testing.T) {
	var vips []*VIP
	socks := &countingSockets{}
	for i := range gateParallel {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		vips = append(vips, &VIP{Name: a.String()})
		socks.ls = append(socks.ls, Listener{Addr: netip.AddrPortFrom(a, 80)})
	}
	units := &gatedUnits{want: gateParallel, all: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Gate(ctx, vips, Deps{Units: units, Sockets: socks}, 2, time.Millisecond); err != nil {
		t.Fatalf("gate: %v (%d Active calls were running at once at most, want %d)", err, units.running.Load(), gateParallel)
	}
	if n := socks.listings.Load(); n != 2 {
		t.Errorf("%d listings for 2 rounds of %d VIPs, want one per round", n, len(vips))
	}
}

func TestProbeChecker(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.10:443")
	for _, p := range []Probe{{Kind: ProbeTCP, Addr: a}, {Kind: ProbeTLS, Addr: a, Host: "h"}, {Kind: ProbeHTTP, Addr: a, Host: "h", TLS: true}} {
		c, err := p.Checker()
		if err != nil || !strings.Contains(c.String(), "192.0.2.10:443") {
			t.Fatalf("%+v: %v %v", p, c, err)
		}
	}
	if _, err := (Probe{Kind: "icmp"}).Checker(); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
