package setup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lbctl/lbctl/bpf"
	"github.com/lbctl/lbctl/bpf/handoff"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/health/traffic"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/servers"
	"github.com/lbctl/lbctl/systemd"
)

// RunAgent runs the node's health agent until ctx ends: sock_diag polling
// with eBPF listener events (or polling only when eBPF is not available),
// the BIRD announcer, the control socket, metrics, and sd_notify readiness
// and watchdog when run by systemd. units may be nil (no unit state in
// health).
func RunAgent(ctx context.Context, cfg *config.Config, units systemd.Manager, log *slog.Logger) error {
	oneProc()
	store, err := release.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	acfg := agentConfig(ctx, cfg, store, units, log)
	if ds, err := bpf.OpenDiagSocket(); err != nil {
		log.Warn("sock_diag socket: listing listeners with a socket each time", "err", err)
	} else {
		defer ds.Close()
		acfg.Deps.Sockets = agent.Sockets{Lister: ds, NetNSFD: -1}
	}
	closeProbes, err := attachProbes(ctx, &acfg, log)
	if err != nil {
		return err
	}
	defer closeProbes()
	evs, closeEvents, err := agent.ListenBackendEvents(ctx, haproxy.EventsSocket(cfg.RuntimeDir),
		func(err error) { log.Debug("haproxy events socket", "err", err) })
	if err != nil {
		log.Warn("HAProxy state events unavailable: backends are read at every evaluation", "err", err)
	} else {
		defer closeEvents()
		acfg.BackendEvents = evs
	}
	ho := newHandoff(time.Duration(cfg.DrainTime)+10*time.Second, handoff.DefaultPinDir)
	defer ho.Close()
	acfg.Handoff = ho
	switch {
	case ho.dp == nil:
		log.Warn("flow handoff unavailable: connections whose route moves to another node will be reset", "reason", ho.state)
	case !ho.dp.Pinned():
		log.Warn("flow handoff " + ho.pins)
	}
	ann, err := newAnnouncer(cfg, func(tm bird.Timing) {
		log.Info("routes applied in BIRD", "prefixes", tm.Prefixes, "write", tm.Write.Round(time.Microsecond),
			"configure", tm.Configure.Round(time.Microsecond), "verify", tm.Verify.Round(time.Microsecond), "err", tm.Err)
	})
	if err != nil {
		return err
	}
	defer ann.Close()
	acfg.Announcer = ann
	reg := agentMetrics(&acfg, store)
	a := agent.New(acfg)
	defer background(ann.Run)()
	ln, err := agent.Listen(cfg.Agent.Socket)
	if err != nil {
		return err
	}
	ctl := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go ctl.Serve(ln)
	defer ctl.Close()
	// Server maintenance (lbctl server drain|disable) is re-applied after
	// every reload, restart and install.
	// Its passes share the wake-ups of the stable VIPs' evaluations.
	maint := &servers.Reconciler{Dir: cfg.StateDir, Log: log.With("component", "servers"),
		Socket: AdminSocket(cfg), VIPs: func() []string { return vipNames(a) },
		Grid: a.Grid(), Interval: 3 * a.Grid()}
	go maint.Run(ctx)
	if cfg.Agent.Metrics != "" {
		defer serveMetrics(cfg, store, a, reg, log).Close()
	}
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		go watchdog(ctx, a, wd)
	}
	return a.Run(ctx, func() {
		_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
		log.Info("agent ready", "probe", acfg.Probe)
	})
}

// agentConfig is the agent's configuration from the node's, with unit
// state from systemd's signals (rather than two D-Bus calls per VIP and
// evaluation) when units can watch them.
func agentConfig(ctx context.Context, cfg *config.Config, store *release.Store, units systemd.Manager, log *slog.Logger) agent.Config {
	acfg := agent.Config{Store: store, Deps: HealthDeps(cfg, units), Log: log, Probe: "ebpf",
		Interval: time.Duration(cfg.Agent.Interval), FastInterval: time.Duration(cfg.Agent.FastInterval),
		ProbeInterval: time.Duration(cfg.Agent.ProbeInterval), Rise: cfg.Agent.Rise, Fall: cfg.Agent.Fall,
		KeepRoutesOnShutdown: cfg.Agent.KeepRoutesOnShutdown}
	if st, ok := acfg.Deps.Backends.(agent.Stats); ok {
		// The processes behind each VIP's admin socket, to withdraw a
		// stopped HAProxy at once.
		st.Workers = &agent.Workers{}
		acfg.Deps.Backends, acfg.Processes = st, st.Workers
	}
	if rt, ok := acfg.Deps.Backends.(agent.Runtime); ok {
		acfg.Runtime = rt
	}
	if w, ok := units.(interface {
		WatchUnits(context.Context, string) (*systemd.UnitWatch, error)
	}); ok {
		if uw, err := w.WatchUnits(ctx, systemd.UnitPattern); err != nil {
			log.Warn("watching unit state failed, asking systemd per VIP", "err", err)
		} else {
			acfg.Deps.Units = agent.UnitWatch{Watch: uw}
			acfg.UnitEvents = unitEvents(uw)
		}
	}
	return acfg
}

// unitEvents forwards the state changes of the VIPs' units; a change that
// finds the channel full is dropped (the next evaluation sees the state).
func unitEvents(uw *systemd.UnitWatch) <-chan agent.UnitEvent {
	ch := make(chan agent.UnitEvent, 256)
	uw.Notify(func(unit, state string) {
		if vip, ok := systemd.InstanceOf(unit); ok {
			select {
			case ch <- agent.UnitEvent{VIP: vip, State: state}:
			default:
			}
		}
	})
	return ch
}

// attachProbes loads the eBPF socket probes into acfg, or notes in
// acfg.Probe why the agent falls back to sock_diag polling. The returned
// function unloads them.
func attachProbes(ctx context.Context, acfg *agent.Config, log *slog.Logger) (func(), error) {
	p, err := bpf.Load()
	if err != nil {
		acfg.Probe = fmt.Sprintf("sock_diag polling (eBPF unavailable: %v)", err)
		log.Warn("eBPF socket probes unavailable, falling back to sock_diag polling", "err", err)
		return func() {}, nil
	}
	netns, err := bpf.NetNSInode(-1)
	if err != nil {
		p.Close()
		return nil, err
	}
	acfg.Events, acfg.Watcher, acfg.WatchNetNS = agent.WatchEvents(ctx, p, netns), p, netns
	if acfg.StopSignals = agent.WatchSignals(ctx, p); acfg.StopSignals == nil {
		log.Warn("stop signals unavailable: HAProxy processes are looked at twice a second", "err", p.SignalsErr())
	}
	return func() { p.Close() }, nil
}

// agentMetrics registers the agent's metrics and the Go and process
// collectors, with what is known before the first evaluation.
func agentMetrics(acfg *agent.Config, store *release.Store) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	acfg.Metrics = agent.NewMetrics(reg)
	if acfg.Probe == "ebpf" {
		acfg.Metrics.EBPF.Set(1)
	}
	if h, err := store.History(); err == nil && len(h) > 0 {
		last := h[len(h)-1]
		acfg.Metrics.LastInstall.Set(map[bool]float64{true: 1, false: 0}[last.Result == "committed" || last.Result == "no-op"])
	}
	return reg
}

// background runs fn until the returned function is called, which waits
// for fn to return. fn does not see the agent's context: it keeps running
// until the agent loop has returned (the loop's shutdown still announces
// through it).
func background(fn func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = fn(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// serveMetrics serves /metrics (the agent's and every VIP's traffic) and
// the status page on agent.metrics.
func serveMetrics(cfg *config.Config, store *release.Store, a *agent.Agent, reg *prometheus.Registry, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	tr := trafficReader(cfg, a)
	mux.Handle("/metrics", traffic.Handler(reg, tr, 0))
	page := statusPage(cfg, store, a, tr)
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /status", page)
	ms := &http.Server{Addr: cfg.Agent.Metrics, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := ms.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "addr", cfg.Agent.Metrics, "err", err)
		}
	}()
	return ms
}

// watchdog pings systemd while the loop keeps evaluating.
func watchdog(ctx context.Context, a *agent.Agent, every time.Duration) {
	t := time.NewTicker(every / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if time.Since(a.LastEvaluation()) < every {
				_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}
}

// oneProc runs the agent's goroutines on one processor (GOMAXPROCS=1)
// unless the environment sets GOMAXPROCS. The agent waits on sockets and
// timers and computes little; with one processor per core the Go
// scheduler wakes idle threads to look for work at every wake-up, which
// at 150 VIPs on 2 cores was a third of the idle agent's CPU (5.2 % of a
// core against 3.5 %), and grows with the cores of a real server.
func oneProc() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
