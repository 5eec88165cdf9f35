package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lbctl/lbctl/health"
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
	vipA := health.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: addrA}}}
	vipB := health.VIP{Name: "b", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8::11")},
		Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: addrB}}}
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{vipA, vipB}})
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
	store.WriteDrains(health.Drains{VIPs: []string{"b"}})
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ann.last(); len(got) != 0 {
		t.Fatalf("after drain: %v", got)
	}
	if st := a.Status(); !st.VIPs[1].Drained || !st.VIPs[1].Healthy || st.VIPs[1].Announced {
		t.Fatalf("drained status %+v", st.VIPs[1])
	}
	store.WriteDrains(health.Drains{})
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
	vip := health.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: o.addr}}}
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{vip}})
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

// flagUnits is a unit that is active while its flag is set.
type flagUnits struct{ active atomic.Bool }

func (u *flagUnits) Active(context.Context, string) (bool, error) { return u.active.Load(), nil }

// TestUnitEventWithdrawsWithoutPolling: as with a listener event, only the
// unit's state change (its main PID died: systemd says deactivating) can
// withdraw the VIP here (polls an hour apart); a reload (reloading) and
// another VIP's unit do not. The unit active again lets it rise (Rise 1)
// at once.
func TestUnitEventWithdrawsWithoutPolling(t *testing.T) {
	units := make(chan UnitEvent, 8)
	u := &flagUnits{}
	u.active.Store(true)
	o := startOneVIP(t, Config{Interval: time.Hour, FastInterval: 10 * time.Millisecond, Rise: 1, Fall: 1000,
		UnitEvents: units, Deps: health.Deps{Units: u}})
	waitFor(t, "VIP announced after its first evaluation", func() bool { return slices.Equal(o.ann.last(), o.want) })
	units <- UnitEvent{VIP: "a", State: "reloading"}
	units <- UnitEvent{VIP: "other", State: "failed"}
	u.active.Store(false)
	units <- UnitEvent{VIP: "a", State: "deactivating"}
	waitFor(t, "VIP withdrawn on the unit event", func() bool { return len(o.ann.last()) == 0 })
	o.ann.mu.Lock()
	sets := slices.Clone(o.ann.sets)
	o.ann.mu.Unlock()
	if len(sets) != 2 {
		t.Errorf("announcements %v: want the VIP, then nothing (reloading and another VIP's unit change nothing)", sets)
	}
	// Fall 1000: no evaluation can have withdrawn it; one may have run
	// since and replaced the reason with its own.
	if st := o.a.Status(); st.VIPs[0].Healthy || len(st.VIPs[0].Reasons) != 1 ||
		st.VIPs[0].Reasons[0] != "unit deactivating" && st.VIPs[0].Reasons[0] != "unit not active" {
		t.Errorf("status after the event %+v", st.VIPs[0])
	}
	u.active.Store(true)
	units <- UnitEvent{VIP: "a", State: "active"}
	waitFor(t, "VIP announced again once its unit is active", func() bool { return slices.Equal(o.ann.last(), o.want) })
}

func TestControlSocket(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	_, addr := serve(t)
	store.Stage(&release.Release{Serial: 3, State: &plan.State{}})
	store.Commit(3)
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{{Name: "a",
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: addr}}}}})
	a := New(Config{Store: store, Announcer: &fakeAnnouncer{ch: make(chan []netip.Prefix, 10)}, Rise: 1, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx, nil)
	sock := serveControl(t, a)
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

// blockingBackends answers UpCount for every VIP except frozen, whose call
// blocks until its context ends (a hung HAProxy's admin socket); it counts
// the calls in progress for frozen.
type blockingBackends struct {
	frozen  string
	mu      sync.Mutex
	blocked int
	entered chan struct{}
}

func (b *blockingBackends) UpCount(ctx context.Context, vip string) (map[string]int, error) {
	if vip != b.frozen {
		return map[string]int{"be": 1}, nil
	}
	b.mu.Lock()
	b.blocked++
	b.mu.Unlock()
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	b.mu.Lock()
	b.blocked--
	b.mu.Unlock()
	return nil, ctx.Err()
}

func (b *blockingBackends) inProgress() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked
}

// TestFrozenVIPDoesNotHoldUpAnother: VIP a's evaluation hangs (its admin
// socket never answers) for as long as its deadline allows; a listener-close
// event of VIP b withdraws b while a's evaluation is still hanging, and b's
// own evaluations keep running meanwhile.
func TestFrozenVIPDoesNotHoldUpAnother(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	lnA, addrA := serve(t)
	defer lnA.Close()
	lnB, addrB := serve(t)
	defer lnB.Close()
	be := []health.Backend{{Name: "be", MinUp: 1}}
	vipA := health.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: addrA}}, Backends: be}
	vipB := health.VIP{Name: "b", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.11")},
		Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: addrB}}, Backends: be}
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{vipA, vipB}})
	backends := &blockingBackends{entered: make(chan struct{}, 1)}
	ann := &fakeAnnouncer{ch: make(chan []netip.Prefix, 100)}
	events := make(chan ListenerEvent, 1)
	a := New(Config{Store: store, Announcer: ann, Events: events, Deps: health.Deps{Backends: backends},
		Interval: 20 * time.Millisecond, FastInterval: 5 * time.Millisecond, Rise: 1, Fall: 1000,
		EvalTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx, nil) }()
	both := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("192.0.2.11/32")}
	waitFor(t, "both VIPs announced", func() bool { return slices.Equal(ann.last(), both) })

	// From now on a's evaluations hang until the agent stops.
	backends.mu.Lock()
	backends.frozen = "a"
	backends.mu.Unlock()
	<-backends.entered
	evalsB := a.evaluations("b")
	waitFor(t, "b evaluated again while a's evaluation hangs", func() bool { return a.evaluations("b") > evalsB+2 })
	lnB.Close()
	events <- ListenerEvent{Addr: addrB, Up: false, At: time.Now()}
	waitFor(t, "b withdrawn on its listener event", func() bool { return slices.Equal(ann.last(), both[:1]) })
	if backends.inProgress() != 1 {
		t.Errorf("a's evaluation no longer hanging (%d in progress): the test proves nothing", backends.inProgress())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// queueSockets reports one listener per address with the accept queue the
// test sets.
type queueSockets struct {
	mu      sync.Mutex
	backlog map[netip.AddrPort]uint32
	lists   int
	// drain makes every queue one shorter at each look.
	drain bool
}

func (q *queueSockets) set(ap netip.AddrPort, n uint32, drain bool) {
	q.mu.Lock()
	q.backlog[ap], q.drain = n, drain
	q.mu.Unlock()
}

func (q *queueSockets) Listeners(context.Context) ([]health.Listener, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.lists++
	var out []health.Listener
	for ap, n := range q.backlog {
		out = append(out, health.Listener{Addr: ap, Backlog: n, MaxBacklog: 4096})
		if q.drain && n > 0 {
			q.backlog[ap] = n - 1
		}
	}
	return out, nil
}

func (q *queueSockets) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lists
}

// fakeRuntime answers Responds at once (busy) or never (hung).
type fakeRuntime struct {
	mu    sync.Mutex
	hung  bool
	calls int
}

func (r *fakeRuntime) Responds(ctx context.Context, vip string) error {
	r.mu.Lock()
	r.calls++
	hung := r.hung
	r.mu.Unlock()
	if !hung {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (r *fakeRuntime) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// TestStall: an accept queue that holds connections in two looks without
// draining is a suspicion; a runtime API that answers (busy HAProxy) keeps
// the VIP announced, one that does not (hung) withdraws it at once, with
// polls far apart and a Fall count no poll sequence reaches.
func TestStall(t *testing.T) {
	for _, hung := range []bool{false, true} {
		t.Run(map[bool]string{false: "busy", true: "hung"}[hung], func(t *testing.T) {
			ln, addr := serve(t)
			defer ln.Close()
			store, _ := release.Open(t.TempDir())
			store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{{Name: "a",
				Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: addr}}}}})
			sockets := &queueSockets{backlog: map[netip.AddrPort]uint32{addr: 0}}
			rt := &fakeRuntime{hung: hung}
			ann := &fakeAnnouncer{ch: make(chan []netip.Prefix, 100)}
			a := New(Config{Store: store, Announcer: ann, Deps: health.Deps{Sockets: sockets}, Runtime: rt,
				Interval: time.Hour, FastInterval: time.Hour, Rise: 1, Fall: 1000,
				StallInterval: 5 * time.Millisecond, StallTimeout: 20 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- a.Run(ctx, nil) }()
			want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}
			waitFor(t, "announced", func() bool { return slices.Equal(ann.last(), want) })

			// A queue that drains between looks raises no suspicion.
			sockets.set(addr, 1000, true)
			n := sockets.count()
			waitFor(t, "twenty looks", func() bool { return sockets.count() > n+20 })
			if rt.count() != 0 {
				t.Errorf("a draining queue made the agent ask the runtime API %d times", rt.count())
			}
			// One that does not drain does.
			sockets.set(addr, 3, false)
			waitFor(t, "runtime API asked", func() bool { return rt.count() > 0 })
			if hung {
				waitFor(t, "hung VIP withdrawn", func() bool { return len(ann.last()) == 0 })
				st := a.Status().VIPs[0]
				if st.Healthy || len(st.Reasons) != 1 || !strings.Contains(st.Reasons[0], "HAProxy hung: accept queue of "+addr.String()+" not drained") {
					t.Errorf("status %+v", st)
				}
			} else {
				n := sockets.count()
				waitFor(t, "ten more looks", func() bool { return sockets.count() > n+10 })
				if !slices.Equal(ann.last(), want) {
					t.Errorf("busy VIP withdrawn: %v; status %+v", ann.last(), a.Status().VIPs[0])
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOneListingServesEveryVIP: with 100 VIPs the listeners are listed
// about once per socket-watcher round, not once per VIP evaluation.
func TestOneListingServesEveryVIP(t *testing.T) {
	ln, addr := serve(t)
	defer ln.Close()
	store, _ := release.Open(t.TempDir())
	var vips []health.VIP
	for i := range 100 {
		vips = append(vips, health.VIP{Name: fmt.Sprintf("v%d", i), Addresses: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})},
			Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: addr}}})
	}
	store.WriteAnnounceable(health.Announceable{VIPs: vips})
	sockets := &queueSockets{backlog: map[netip.AddrPort]uint32{addr: 0}}
	a := New(Config{Store: store, Announcer: &fakeAnnouncer{ch: make(chan []netip.Prefix, 100)}, Deps: health.Deps{Sockets: sockets},
		Interval: 50 * time.Millisecond, FastInterval: 10 * time.Millisecond, Rise: 1, StallInterval: 25 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx, nil) }()
	waitFor(t, "500 evaluations", func() bool {
		n := 0
		for _, v := range vips {
			n += a.evaluations(v.Name)
		}
		return n >= 500
	})
	cancel()
	<-done
	evals := 0
	for _, v := range vips {
		evals += a.evaluations(v.Name)
	}
	if lists := sockets.count(); lists*5 > evals {
		t.Errorf("%d listings for %d evaluations: listings should not grow with the VIPs", lists, evals)
	}
}

// gshutAnnouncer is a fakeAnnouncer that records graceful shutdown.
type gshutAnnouncer struct {
	fakeAnnouncer
	gshut bool
}

func (g *gshutAnnouncer) SetGracefulShutdown(on bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	changed := g.gshut != on
	g.gshut = on
	return changed
}

// TestGracefulShutdown: the drain state's graceful shutdown reaches the
// announcer and is applied with the same set (the routes stay, marked);
// clearing it applies the set again without the mark.
func TestGracefulShutdown(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	ln, addr := serve(t)
	defer ln.Close()
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes: []health.Probe{{Kind: health.ProbeTCP, Addr: addr}}}}})
	store.Stage(&release.Release{Serial: 1, State: &plan.State{}})
	store.Commit(1)
	ann := &gshutAnnouncer{fakeAnnouncer: fakeAnnouncer{ch: make(chan []netip.Prefix, 100)}}
	a := New(Config{Store: store, Announcer: ann, Interval: 20 * time.Millisecond, FastInterval: 5 * time.Millisecond, Rise: 1, Fall: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- a.Run(ctx, nil) }()
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}
	waitFor(t, "VIP announced", func() bool { return slices.Equal(ann.last(), want) })
	for _, on := range []bool{true, false} {
		ann.mu.Lock()
		n := len(ann.sets)
		ann.mu.Unlock()
		store.WriteDrains(health.Drains{GracefulShutdown: on})
		if err := a.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("set applied again with graceful shutdown %v", on), func() bool {
			ann.mu.Lock()
			defer ann.mu.Unlock()
			return ann.gshut == on && len(ann.sets) > n && slices.Equal(ann.sets[len(ann.sets)-1], want)
		})
	}
	cancel()
	<-done
}

// serveControl serves a's control API on a socket of its own until the test
// ends and returns the socket's path.
func serveControl(t *testing.T, a *Agent) string {
	t.Helper()
	sock := t.TempDir() + "/agent.sock"
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// flagProcesses is a VIP's HAProxy that is stopped while its flag is set.
type flagProcesses struct{ stopped atomic.Bool }

func (p *flagProcesses) Stopped(string) ([]int, bool) { return []int{42}, p.stopped.Load() }

// TestStopSignalWithdraws: with stop signals on, the processes are not
// polled about twice a second (a stopped HAProxy stays announced for
// longer than that; the backstop poll is an hour away) but looked at when
// a stop signal arrives, which withdraws the VIP at once.
func TestStopSignalWithdraws(t *testing.T) {
	procs := &flagProcesses{}
	sigs := make(chan StopSignal, 1)
	o := startOneVIP(t, Config{Interval: time.Hour, FastInterval: time.Hour, Rise: 1, Fall: 1000,
		Processes: procs, StopSignals: sigs, StoppedBackstop: time.Hour})
	waitFor(t, "VIP announced after its first evaluation", func() bool { return slices.Equal(o.ann.last(), o.want) })
	procs.stopped.Store(true)
	time.Sleep(2 * stoppedInterval) // the poll without signals
	if !slices.Equal(o.ann.last(), o.want) {
		t.Fatalf("withdrawn without a stop signal: the processes were polled as without signals")
	}
	sigs <- StopSignal{Sig: syscall.SIGSTOP, At: time.Now()}
	waitFor(t, "VIP withdrawn after the stop signal", func() bool { return len(o.ann.last()) == 0 })
	if st := o.a.Status(); st.VIPs[0].Healthy || len(st.VIPs[0].Reasons) != 1 ||
		st.VIPs[0].Reasons[0] != "HAProxy hung: stopped (process [42] in state T)" {
		t.Errorf("status after the signal %+v", st.VIPs[0])
	}
}
