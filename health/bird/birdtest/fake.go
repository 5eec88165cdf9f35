// Package birdtest provides an in-memory stand-in for BIRD's control socket,
// for unit tests of code that drives bird.Announcer or bird.Controller, and
// owns the BIRD configurations that tests and the sandbox (test/testbed) run
// (Config, conf.go).
//
// The fake behaves like BIRD where the Announcer can tell: Configure re-reads
// the include files (and fails with a 8002 reply on a malformed one), routes
// change only on Configure, a restart drops every open connection, and a
// disabled static protocol shows no routes.
package birdtest

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lbctl/lbctl/health/bird"
)

// Fake is an in-memory BIRD with two static protocols fed from include
// files. The zero value is not usable; use New.
type Fake struct {
	mu       sync.Mutex
	includes map[string]string // protocol -> include path
	routes   map[string][]netip.Prefix
	// gshut holds "proto prefix" of the routes carrying GRACEFUL_SHUTDOWN.
	gshut      map[string]bool
	disabled   map[string]bool
	generation int
	failNext   []error
	delay      time.Duration
	inFlight   int

	// Counters, read them with Stats.
	configures, dials, maxInFlight int
}

// New returns a fake whose static protocol proto4 includes path4 and proto6
// includes path6. It starts with the routes the files hold now (missing
// files mean no routes), as BIRD reads them at start.
func New(proto4, path4, proto6, path6 string) *Fake {
	f := &Fake{
		includes: map[string]string{proto4: path4, proto6: path6},
		routes:   map[string][]netip.Prefix{},
		disabled: map[string]bool{},
	}
	f.load()
	return f
}

// Stats are counters of what the fake was asked to do.
type Stats struct {
	Configures  int // configure commands received
	Dials       int // connections opened
	MaxInFlight int // most configure commands running at the same time
}

// Stats returns the counters.
func (f *Fake) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{Configures: f.configures, Dials: f.dials, MaxInFlight: f.maxInFlight}
}

// SetConfigureDelay makes every configure take d (to let requests pile up).
func (f *Fake) SetConfigureDelay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

// FailConfigure makes the next configure commands fail with errs, in order.
func (f *Fake) FailConfigure(errs ...error) {
	f.mu.Lock()
	f.failNext = append(f.failNext, errs...)
	f.mu.Unlock()
}

// Restart simulates a BIRD restart: open connections fail with io.EOF from
// now on, and the routes are read afresh from the include files.
func (f *Fake) Restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.generation++
	f.load()
}

// Disable disables a static protocol: it shows no routes, and configure does
// not enable it again (as in BIRD).
func (f *Fake) Disable(proto string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disabled[proto] = true
}

// Dial opens a connection; use it as bird.AnnouncerConfig.Dial.
func (f *Fake) Dial(ctx context.Context) (bird.Controller, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials++
	return &conn{f: f, generation: f.generation}, nil
}

// String prints the routes of every protocol, one per line, sorted, e.g.
// "vips4 192.0.2.10/32".
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for proto := range f.includes {
		if f.disabled[proto] {
			lines = append(lines, proto+" disabled")
			continue
		}
		for _, p := range f.routes[proto] {
			line := proto + " " + p.String()
			if f.gshut[line] {
				line += " gshut"
			}
			lines = append(lines, line)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// load reads the include files; f.mu is held. It reports the first error and
// leaves the routes unchanged then.
func (f *Fake) load() error {
	next := map[string][]netip.Prefix{}
	gshut := map[string]bool{}
	for proto, path := range f.includes {
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) && f.generation == 0 && f.configures == 0 {
			continue
		}
		if err != nil {
			return &bird.ReplyError{Command: "configure", Code: bird.CodeConfigFileError, Message: err.Error()}
		}
		ps, gs, err := parseInclude(data)
		if err != nil {
			return &bird.ReplyError{Command: "configure", Code: bird.CodeConfigFileError, Message: fmt.Sprintf("%s:%v", path, err)}
		}
		next[proto] = ps
		for _, p := range gs {
			gshut[proto+" "+p.String()] = true
		}
	}
	f.routes, f.gshut = next, gshut
	return nil
}

type conn struct {
	f          *Fake
	generation int
	closed     bool
}

func (c *conn) check() error {
	if c.closed {
		return fmt.Errorf("fake bird: use of closed connection")
	}
	if c.generation != c.f.generation {
		return fmt.Errorf("fake bird: %w", io.EOF)
	}
	return nil
}

func (c *conn) Configure(ctx context.Context) error {
	f := c.f
	f.mu.Lock()
	if err := c.check(); err != nil {
		f.mu.Unlock()
		return err
	}
	f.configures++
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	delay := f.delay
	f.mu.Unlock()

	var err error
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		case <-t.C:
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	if err != nil {
		return err
	}
	if len(f.failNext) > 0 {
		err, f.failNext = f.failNext[0], f.failNext[1:]
		return err
	}
	return f.load()
}

func (c *conn) Routes(ctx context.Context, protocol string) ([]netip.Prefix, error) {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := c.check(); err != nil {
		return nil, err
	}
	if _, ok := f.includes[protocol]; !ok {
		return nil, &bird.ReplyError{Command: "show route protocol " + protocol, Code: bird.CodeParseError,
			Message: "syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN"}
	}
	if f.disabled[protocol] {
		return nil, nil
	}
	return slices.Clone(f.routes[protocol]), nil
}

func (c *conn) Close() error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.closed = true
	return nil
}

// parseInclude reads back what bird.RenderInclude wrote, as BIRD would: the prefixes of the
// "route PREFIX blackhole;" lines, and those of the lines that add
// GRACEFUL_SHUTDOWN (bird.GracefulShutdownAttr) again in gshut. Blank and
// comment lines are skipped; any other line is an error naming its line
// number.
func parseInclude(data []byte) (out, gshut []netip.Prefix, err error) {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		g := false
		if l, ok := strings.CutSuffix(line, " "+bird.GracefulShutdownAttr+";"); ok {
			line, g = l+";", true
		}
		f := strings.Fields(strings.TrimSuffix(line, ";"))
		if len(f) != 3 || f[0] != "route" || f[2] != "blackhole" || !strings.HasSuffix(line, ";") {
			return nil, nil, fmt.Errorf("line %d: not a blackhole route: %q", i+1, line)
		}
		p, err := netip.ParsePrefix(f[1])
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, p)
		if g {
			gshut = append(gshut, p)
		}
	}
	return bird.SortPrefixes(out), gshut, nil
}
