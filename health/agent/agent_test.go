package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

type fakeAnnouncer struct {
	mu   sync.Mutex
	sets [][]netip.Prefix
	ch   chan []netip.Prefix
}

func (f *fakeAnnouncer) Request(p []netip.Prefix) {
	f.mu.Lock()
	f.sets = append(f.sets, slices.Clone(p))
	f.mu.Unlock()
	select {
	case f.ch <- p:
	default:
	}
}

func (f *fakeAnnouncer) Set(_ context.Context, p []netip.Prefix) error {
	f.Request(p)
	return nil
}

func (f *fakeAnnouncer) last() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sets) == 0 {
		return nil
	}
	return f.sets[len(f.sets)-1]
}

// serve accepts and closes connections until the listener closes.
func serve(t *testing.T) (net.Listener, netip.AddrPort) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln, netip.MustParseAddrPort(ln.Addr().String())
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAgent(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	lnA, addrA := serve(t)
	defer lnA.Close()
	lnB, addrB := serve(t)
	defer lnB.Close()
	vipA := plan.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes: []plan.Probe{{Kind: plan.ProbeTCP, Addr: addrA}}}
	vipB := plan.VIP{Name: "b", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8::11")},
		Probes: []plan.Probe{{Kind: plan.ProbeTCP, Addr: addrB}}}
	store.WriteAnnounceable(release.Announceable{VIPs: []plan.VIP{vipA, vipB}})
	store.Stage(&release.Release{Serial: 7, State: &plan.State{}})
	store.Commit(7)

	ann := &fakeAnnouncer{ch: make(chan []netip.Prefix, 100)}
	events := make(chan ListenerEvent, 1)
	reg := prometheus.NewRegistry()
	a := New(Config{Store: store, Announcer: ann, Events: events, Interval: 20 * time.Millisecond,
		FastInterval: 5 * time.Millisecond, Rise: 2, Fall: 3, Metrics: NewMetrics(reg)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx, nil) }()

	all := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("192.0.2.11/32"), netip.MustParsePrefix("2001:db8::11/128")}
	waitFor(t, "both VIPs announced after rise", func() bool { return slices.Equal(ann.last(), all) })
	if v := testutil.ToFloat64(a.cfg.Metrics.Serial); v != 7 {
		t.Errorf("serial metric %v", v)
	}

	// A listener-close event withdraws at once, without waiting for Fall
	// polls (Fall is 3 at 20 ms: polling alone would take >= 40 ms).
	lnA.Close()
	start := time.Now()
	events <- ListenerEvent{Addr: addrA, Up: false, At: start}
	waitFor(t, "VIP a withdrawn", func() bool { return !slices.Contains(ann.last(), all[0]) })
	// That the event, not polling, withdrew it is asserted without a
	// wall-clock bound (which a loaded CI machine breaks) by
	// TestListenerEventWithdrawsWithoutPolling.
	t.Logf("withdrawal after the event took %v", time.Since(start))
	if got := a.Status(); got.VIPs[0].Healthy || got.VIPs[0].Reasons[0] != "listener "+addrA.String()+" closed" {
		t.Errorf("status %+v", got.VIPs[0])
	}

	// Drain b: withdrawn while its listener stays; undrain: back.
	store.WriteDrains(release.Drains{VIPs: []string{"b"}})
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ann.last(); len(got) != 0 {
		t.Fatalf("after drain: %v", got)
	}
	if st := a.Status(); !st.VIPs[1].Drained || !st.VIPs[1].Healthy || st.VIPs[1].Announced {
		t.Fatalf("drained status %+v", st.VIPs[1])
	}
	store.WriteDrains(release.Drains{})
	a.Reload(ctx)
	waitFor(t, "b announced after undrain", func() bool { return slices.Equal(ann.last(), all[1:]) })

	// Clean shutdown withdraws everything.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := ann.last(); len(got) != 0 {
		t.Fatalf("after shutdown: %v", got)
	}
}

// oneVIP runs an agent over one VIP whose TCP probe hits a local listener.
type oneVIP struct {
	ln     net.Listener
	addr   netip.AddrPort
	ann    *fakeAnnouncer
	events chan ListenerEvent
	a      *Agent
	want   []netip.Prefix // the VIP's prefix, as announced
}

// startOneVIP starts the agent with cfg (Store, Announcer and Events are
// filled in) and stops it when the test ends.
func startOneVIP(t *testing.T, cfg Config) *oneVIP {
	t.Helper()
	store, _ := release.Open(t.TempDir())
	o := &oneVIP{ann: &fakeAnnouncer{ch: make(chan []netip.Prefix, 100)}, events: make(chan ListenerEvent, 8),
		want: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}}
	o.ln, o.addr = serve(t)
	t.Cleanup(func() { o.ln.Close() })
	vip := plan.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes: []plan.Probe{{Kind: plan.ProbeTCP, Addr: o.addr}}}
	store.WriteAnnounceable(release.Announceable{VIPs: []plan.VIP{vip}})
	cfg.Store, cfg.Announcer, cfg.Events = store, o.ann, o.events
	o.a = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- o.a.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return o
}

// TestListenerEventWithdrawsWithoutPolling: with polls an hour apart, a
// Fall count no poll sequence reaches in the test and the listener still
// open (a poll would find it healthy), only the listener-close event can
// withdraw the VIP.
func TestListenerEventWithdrawsWithoutPolling(t *testing.T) {
	o := startOneVIP(t, Config{Interval: time.Hour, FastInterval: time.Hour, Rise: 1, Fall: 1000})
	waitFor(t, "VIP announced after its first evaluation", func() bool { return slices.Equal(o.ann.last(), o.want) })
	o.events <- ListenerEvent{Addr: o.addr, Up: false, At: time.Now()}
	waitFor(t, "VIP withdrawn on the listener-close event", func() bool { return len(o.ann.last()) == 0 })
	if st := o.a.Status(); st.VIPs[0].Healthy || st.VIPs[0].Announced {
		t.Errorf("status after the event %+v", st.VIPs[0])
	}
}

func TestControlSocket(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	_, addr := serve(t)
	store.Stage(&release.Release{Serial: 3, State: &plan.State{}})
	store.Commit(3)
	store.WriteAnnounceable(release.Announceable{VIPs: []plan.VIP{{Name: "a",
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, Probes: []plan.Probe{{Kind: plan.ProbeTCP, Addr: addr}}}}})
	a := New(Config{Store: store, Announcer: &fakeAnnouncer{ch: make(chan []netip.Prefix, 10)}, Rise: 1, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx, nil)
	sock := t.TempDir() + "/agent.sock"
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	if fi, _ := os.Stat(sock); fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v", fi.Mode())
	}
	c := Client{Socket: sock}
	st, err := c.Reload(ctx)
	if err != nil || st.Serial != 3 || len(st.VIPs) != 1 || !st.VIPs[0].Announced {
		t.Fatalf("reload: %+v %v", st, err)
	}
	if _, err := (Client{Socket: sock + ".nope"}).Status(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no agent: %v", err)
	}
}
