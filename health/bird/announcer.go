package bird

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Controller is the part of a BIRD control connection the Announcer needs.
// *Client implements it; birdtest.Fake provides an in-memory one.
type Controller interface {
	// Configure reloads BIRD's configuration and returns once it is in effect.
	Configure(ctx context.Context) error
	// Routes lists the networks of the routes a protocol put into its tables.
	Routes(ctx context.Context, protocol string) ([]netip.Prefix, error)
	Close() error
}

// DialFunc opens a Controller; the Announcer calls it again after a
// connection failed (for example because BIRD restarted).
type DialFunc func(ctx context.Context) (Controller, error)

// SocketDialer returns a DialFunc that dials BIRD's control socket.
func SocketDialer(socketPath string) DialFunc {
	return func(ctx context.Context) (Controller, error) {
		return Dial(ctx, socketPath)
	}
}

// AnnouncerConfig says where the announcement lives. bird.conf (rendered by
// bundle/render/bird) must include Include4 inside "protocol static
// Protocol4 { ipv4; ... }" and Include6 inside Protocol6, and export those
// protocols' routes to BGP.
type AnnouncerConfig struct {
	// Include4 and Include6 are the include files with IPv4 and IPv6 VIP
	// routes, e.g. /etc/bird/lbctl/announce4.conf. Required, distinct.
	Include4, Include6 string
	// Protocol4 and Protocol6 name the static protocols that include them.
	// Default "vips4" and "vips6".
	Protocol4, Protocol6 string
	// Dial connects to BIRD. Required; usually SocketDialer(path).
	Dial DialFunc
	// VerifyTimeout bounds how long Set waits for BIRD's tables to show the
	// intended routes after a configure. Default 2 s.
	VerifyTimeout time.Duration
	// RetryMin and RetryMax bound the back-off of Run after a failed Set.
	// Defaults 50 ms and 5 s.
	RetryMin, RetryMax time.Duration
	// Observe, when set, is told how each Set that changed something
	// spent its time (for the agent's log).
	Observe func(Timing)
}

// Timing is where one Set spent its time: rewriting the include files,
// BIRD's configure (parsing bird.conf and reconfiguring its protocols)
// and reading the routes back until they matched.
type Timing struct {
	Prefixes                 int
	Write, Configure, Verify time.Duration
	Configured, Wrote        bool
	Err                      error
}

// MismatchError means BIRD's static protocols do not hold exactly the
// intended VIP routes after a configure.
type MismatchError struct {
	Missing    []netip.Prefix // intended but absent
	Unexpected []netip.Prefix // present but not intended
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("bird: announced routes differ from intended: missing %v, unexpected %v", e.Missing, e.Unexpected)
}

// AnnouncerState is a snapshot for status output and metrics.
type AnnouncerState struct {
	// Desired is the last set given to Set or Request.
	Desired []netip.Prefix
	// Applied is the last set verified in BIRD; nil before the first success.
	Applied []netip.Prefix
	// AppliedAt is when Applied was verified.
	AppliedAt time.Time
	// Err is the error of the last Set, nil if it succeeded.
	Err error
	// GracefulShutdown is whether the routes carry GRACEFUL_SHUTDOWN.
	GracefulShutdown bool
	// Configures counts configure commands BIRD answered (successfully or
	// with an error reply); Writes counts include files rewritten; Dials
	// counts connections opened.
	Configures, Writes, Dials uint64
}

// Announcer keeps BIRD's announced VIP routes equal to a desired set. Set
// applies a set synchronously; Request plus Run apply sets asynchronously,
// coalescing bursts: while a configure is in flight only the latest request
// is kept, and it is always applied eventually.
type Announcer struct {
	cfg AnnouncerConfig

	applyMu sync.Mutex // serialises Set; guards conn
	conn    Controller

	mu      sync.Mutex // guards the fields below
	pending []netip.Prefix
	hasPend bool
	state   AnnouncerState
	// gshut marks every announced route with GRACEFUL_SHUTDOWN.
	gshut bool

	wake chan struct{}
}

// NewAnnouncer checks cfg and fills in defaults. It does not touch the files
// or BIRD.
func NewAnnouncer(cfg AnnouncerConfig) (*Announcer, error) {
	if cfg.Protocol4 == "" {
		cfg.Protocol4 = "vips4"
	}
	if cfg.Protocol6 == "" {
		cfg.Protocol6 = "vips6"
	}
	if cfg.VerifyTimeout <= 0 {
		cfg.VerifyTimeout = 2 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 50 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Second, cfg.RetryMin)
	}
	var errs []error
	if cfg.Include4 == "" || cfg.Include6 == "" {
		errs = append(errs, errors.New("include file paths for IPv4 and IPv6 are required"))
	} else if cfg.Include4 == cfg.Include6 {
		errs = append(errs, fmt.Errorf("IPv4 and IPv6 include files are the same file %s", cfg.Include4))
	}
	for _, n := range []string{cfg.Protocol4, cfg.Protocol6} {
		if err := checkName(n); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.Protocol4 == cfg.Protocol6 {
		errs = append(errs, fmt.Errorf("IPv4 and IPv6 static protocols are the same protocol %s", cfg.Protocol4))
	}
	if cfg.Dial == nil {
		errs = append(errs, errors.New("no dial function"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("bird: announcer: %w", errors.Join(errs...))
	}
	return &Announcer{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// State returns a snapshot of what the Announcer wants and has achieved.
func (a *Announcer) State() AnnouncerState {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.state
	s.GracefulShutdown = a.gshut
	s.Desired = slices.Clone(s.Desired)
	s.Applied = slices.Clone(s.Applied)
	return s
}

// Previous returns the prefixes the include files hold before this
// Announcer wrote them: what the node announced when the agent (re)started.
// An unreadable file counts as announcing nothing.
func (a *Announcer) Previous() []netip.Prefix {
	var out []netip.Prefix
	for _, path := range []string{a.cfg.Include4, a.cfg.Include6} {
		ps, err := ReadInclude(path)
		if err != nil {
			continue
		}
		out = append(out, ps...)
	}
	return out
}

// Set makes BIRD announce exactly prefixes (any mix of IPv4 and IPv6): it
// rewrites the include files that changed (atomically: temporary file,
// fsync, rename), sends configure, and checks with "show route protocol"
// that both static protocols hold exactly the intended routes. When neither
// file changed and BIRD already holds the intended routes, Set sends no
// configure at all, so applying the same set twice costs two show commands.
// A broken connection (BIRD restarted) is redialled once within the call.
func (a *Announcer) Set(ctx context.Context, prefixes []netip.Prefix) error {
	v4, v6, err := SplitFamilies(prefixes)
	if err != nil {
		return err
	}
	want := append(append(make([]netip.Prefix, 0, len(v4)+len(v6)), v4...), v6...)
	a.mu.Lock()
	a.state.Desired = slices.Clone(want)
	a.mu.Unlock()

	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	err = a.apply(ctx, v4, v6)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.Err = err
	if err == nil {
		a.state.Applied = want
		a.state.AppliedAt = time.Now()
	}
	return err
}

// SetGracefulShutdown says whether the routes announced from now on carry
// the GRACEFUL_SHUTDOWN community (RFC 8326), and reports whether that
// changed. It applies nothing: the next Set (or Request) rewrites the
// include files, which then differ.
func (a *Announcer) SetGracefulShutdown(on bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	changed := a.gshut != on
	a.gshut = on
	return changed
}

func (a *Announcer) apply(ctx context.Context, v4, v6 []netip.Prefix) error {
	a.mu.Lock()
	gshut := a.gshut
	a.mu.Unlock()
	tm := Timing{Prefixes: len(v4) + len(v6)}
	start := time.Now()
	changed4, err := a.writeInclude(a.cfg.Include4, v4, gshut)
	if err != nil {
		return err
	}
	changed6, err := a.writeInclude(a.cfg.Include6, v6, gshut)
	if err != nil {
		return err
	}
	configure := changed4 || changed6
	tm.Write, tm.Wrote = time.Since(start), configure
	if a.cfg.Observe != nil {
		defer func() {
			if tm.Wrote || tm.Configured {
				a.cfg.Observe(tm)
			}
		}()
	}
	for attempt := 0; ; attempt++ {
		fresh, err := a.connect(ctx)
		if err != nil {
			return err
		}
		err = a.reconcile(ctx, v4, v6, configure, &tm)
		tm.Err = err
		if err == nil {
			return nil
		}
		var re *ReplyError
		var me *MismatchError
		if errors.As(err, &re) || errors.As(err, &me) || ctx.Err() != nil {
			return err
		}
		// The connection failed: drop it; retry once if it was an old one
		// (BIRD may have restarted since it was opened). A configure that
		// was interrupted is sent again: configure is idempotent.
		a.conn.Close()
		a.conn = nil
		if fresh || attempt > 0 {
			return err
		}
	}
}

// connect dials unless a connection is open; fresh reports a new one.
func (a *Announcer) connect(ctx context.Context) (fresh bool, err error) {
	if a.conn != nil {
		return false, nil
	}
	c, err := a.cfg.Dial(ctx)
	if err != nil {
		return false, err
	}
	a.conn = c
	a.count(func(s *AnnouncerState) { s.Dials++ })
	return true, nil
}

func (a *Announcer) count(f func(*AnnouncerState)) {
	a.mu.Lock()
	f(&a.state)
	a.mu.Unlock()
}

// reconcile configures BIRD if asked to (or if its routes differ) and then
// verifies, polling until VerifyTimeout.
func (a *Announcer) reconcile(ctx context.Context, v4, v6 []netip.Prefix, configure bool, tm *Timing) error {
	if !configure {
		err := a.verify(ctx, v4, v6)
		var me *MismatchError
		if !errors.As(err, &me) {
			return err // nil: nothing to do
		}
	}
	start := time.Now()
	err := a.conn.Configure(ctx)
	tm.Configure, tm.Configured = time.Since(start), true
	start = time.Now()
	defer func() { tm.Verify = time.Since(start) }()
	var re *ReplyError
	if err == nil || errors.As(err, &re) {
		a.count(func(s *AnnouncerState) { s.Configures++ })
	}
	if err != nil {
		return err
	}
	vctx, cancel := context.WithTimeout(ctx, a.cfg.VerifyTimeout)
	defer cancel()
	wait := 200 * time.Microsecond
	for {
		err := a.verify(ctx, v4, v6)
		var me *MismatchError
		if !errors.As(err, &me) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-vctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

func (a *Announcer) verify(ctx context.Context, v4, v6 []netip.Prefix) error {
	got4, err := a.conn.Routes(ctx, a.cfg.Protocol4)
	if err != nil {
		return err
	}
	got6, err := a.conn.Routes(ctx, a.cfg.Protocol6)
	if err != nil {
		return err
	}
	missing, unexpected := diffPrefixes(append(slices.Clone(v4), v6...), append(got4, got6...))
	if len(missing) > 0 || len(unexpected) > 0 {
		return &MismatchError{Missing: missing, Unexpected: unexpected}
	}
	return nil
}

// diffPrefixes compares two sets; both need not be sorted.
func diffPrefixes(want, got []netip.Prefix) (missing, unexpected []netip.Prefix) {
	w := make(map[netip.Prefix]bool, len(want))
	for _, p := range want {
		w[p] = true
	}
	g := make(map[netip.Prefix]bool, len(got))
	for _, p := range got {
		g[p] = true
		if !w[p] {
			unexpected = append(unexpected, p)
		}
	}
	for _, p := range want {
		if !g[p] {
			missing = append(missing, p)
		}
	}
	return SortPrefixes(missing), SortPrefixes(unexpected)
}

// writeInclude writes the include file if its content differs; it reports
// whether it wrote.
func (a *Announcer) writeInclude(path string, prefixes []netip.Prefix, gshut bool) (bool, error) {
	data := renderInclude(prefixes, gshut)
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("bird: reading %s: %w", path, err)
	}
	if err := replaceFile(path, data); err != nil {
		return false, fmt.Errorf("bird: writing %s: %w", path, err)
	}
	a.count(func(s *AnnouncerState) { s.Writes++ })
	return true, nil
}

// replaceFile replaces path with data atomically (a temporary file next to
// it, renamed over it) without fsync: the include files are derived state,
// rewritten at every agent start, so after a crash either version is
// fine, and an fsync sits on every withdrawal's path (tens of ms, up to
// 160 ms, on a busy disk).
func replaceFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o644)); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// Request asks Run to apply prefixes. It never blocks; only the latest
// request is kept, so a burst of requests leads to few configures, the last
// of which applies the last request.
func (a *Announcer) Request(prefixes []netip.Prefix) {
	a.mu.Lock()
	a.pending = slices.Clone(prefixes)
	a.hasPend = true
	a.state.Desired = slices.Clone(prefixes)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run applies requests until ctx ends, and returns ctx's error. After a
// failure it retries the latest request with exponential back-off
// (RetryMin..RetryMax) until it succeeds or a newer request replaces it.
func (a *Announcer) Run(ctx context.Context) error {
	var (
		retry   <-chan time.Time
		timer   *time.Timer
		backoff = a.cfg.RetryMin
		failed  []netip.Prefix
	)
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return ctx.Err()
		case <-a.wake:
		case <-retry:
		}
		retry = nil
		a.mu.Lock()
		want, ok := a.pending, a.hasPend
		a.pending, a.hasPend = nil, false
		a.mu.Unlock()
		if !ok {
			if failed == nil {
				continue
			}
			want = failed
		}
		if err := a.Set(ctx, want); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if ok {
				backoff = a.cfg.RetryMin
			}
			failed = want
			if failed == nil {
				failed = []netip.Prefix{}
			}
			timer = time.NewTimer(backoff)
			retry = timer.C
			backoff = min(2*backoff, a.cfg.RetryMax)
			continue
		}
		failed = nil
		backoff = a.cfg.RetryMin
	}
}

// Close closes the connection to BIRD, if any. Run must have returned.
func (a *Announcer) Close() error {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if a.conn == nil {
		return nil
	}
	err := a.conn.Close()
	a.conn = nil
	return err
}
