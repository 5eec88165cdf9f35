package sync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Source offers the newest bundle of one place.
type Source interface {
	// Fetch returns the newest bundle the source offers, or nil when the
	// source says nothing changed since the bundle last settled (an HTTP
	// 304). current is the node's current release (hasCurrent false when
	// none): a source may answer nil only if it is at least the serial it
	// last settled, so that after a rollback the newest bundle is fetched
	// again. An error wrapping ErrPermanent is not retried.
	Fetch(ctx context.Context, current uint64, hasCurrent bool) (*Fetched, error)
	// String names the source in messages.
	String() string
}

// Fetched is a candidate bundle, not yet verified.
type Fetched struct {
	// Data is the bundle as published.
	Data []byte
	// Origin is the file or URL it came from.
	Origin string
	// NameSerial is the serial the source's naming promises (a directory
	// source's file name), 0 if none: a verified serial that differs is
	// refused.
	NameSerial uint64
	// Settle, if set, is called with the verified serial once the bundle
	// is installed or found not newer than the current release (an HTTP
	// source then remembers its validators for the next conditional
	// request). It is not called when verification or install fails.
	Settle func(serial uint64) error
}

// Installer is what Sync needs of the node.
type Installer struct {
	// Verify checks the bundle's signature and contents and returns its
	// serial; it writes nothing.
	Verify func(bundle []byte) (serial uint64, err error)
	// Current returns the node's current release, ok false when none.
	Current func() (serial uint64, ok bool, err error)
	// Install installs the bundle (which Verify accepted).
	Install func(ctx context.Context, bundle []byte) error
	// Highest, if set, returns the highest serial the node ever installed
	// (ok false when none is recorded). A bundle below it is Older even
	// when it is newer than the current release (after a rollback): sync
	// never installs what the node has already moved past.
	Highest func() (serial uint64, ok bool, err error)
}

// Options of one sync. Zero fields take the defaults.
type Options struct {
	// MaxDelay is the bound of a random delay before the first fetch, so
	// that a fleet started by the same clock does not fetch at once.
	// Default 0 (the timer unit's RandomizedDelaySec already spreads
	// runs).
	MaxDelay time.Duration
	// Attempts bounds the fetch attempts. Default 4.
	Attempts int
	// Backoff is the delay after the first failed fetch; it doubles after
	// each further failure up to MaxBackoff, with jitter. Defaults 5s and
	// 2m.
	Backoff, MaxBackoff time.Duration
	// Progress, if set, receives one line per step (waits, failed
	// fetches, verification, install); the outcome is the Result.
	Progress func(msg string)

	// Test hooks: sleep waits (default: a timer), jitter returns a
	// random duration in [0, max) (default: math/rand/v2).
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(max time.Duration) time.Duration
}

func (o *Options) defaults() {
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Minute
	}
	if o.sleep == nil {
		o.sleep = sleep
	}
	if o.jitter == nil {
		o.jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Action says what a sync did.
type Action string

// Actions.
const (
	// NotModified: the source said nothing changed since the last settled
	// fetch.
	NotModified Action = "not-modified"
	// UpToDate: the newest bundle is the current release.
	UpToDate Action = "up-to-date"
	// Older: the newest bundle is older than the current release (the node
	// was installed from elsewhere); nothing is installed.
	Older Action = "older"
	// Installed: the newest bundle was installed.
	Installed Action = "installed"
)

// Result says what a sync found and did.
type Result struct {
	Action Action
	// Origin is the file or URL of the bundle fetched, empty when none.
	Origin string
	// Serial is the verified serial of the bundle fetched, 0 when none.
	Serial uint64
	// Current is the release current before the sync (HasCurrent false:
	// none).
	Current    uint64
	HasCurrent bool
	// Highest is the highest serial the node ever installed, 0 if none.
	Highest uint64
	// Delay is the random initial delay waited.
	Delay time.Duration
	// Attempts is the number of fetches made.
	Attempts int
}

var (
	// ErrPermanent marks fetch errors that retrying cannot fix (no bundle
	// in the directory, HTTP 404).
	ErrPermanent = errors.New("not retried")
	// ErrRefused wraps every refusal of a fetched bundle: bad signature,
	// corrupt archive, or a serial that differs from its name.
	ErrRefused = errors.New("bundle refused")
)

// Sync fetches the newest bundle from src, verifies it and installs it if
// its serial is newer than the current release. On error the Result says
// how far it got.
func Sync(ctx context.Context, src Source, inst Installer, opt Options) (Result, error) {
	opt.defaults()
	var res Result
	if inst.Verify == nil || inst.Current == nil || inst.Install == nil {
		return res, errors.New("sync: Verify, Current and Install are required")
	}
	if opt.MaxDelay > 0 {
		res.Delay = opt.jitter(opt.MaxDelay)
		opt.progress("waiting %v (random delay up to %v)", res.Delay.Round(time.Millisecond), opt.MaxDelay)
		if err := opt.sleep(ctx, res.Delay); err != nil {
			return res, fmt.Errorf("sync: %w", err)
		}
	}
	cur, hasCur, err := inst.Current()
	if err != nil {
		return res, fmt.Errorf("sync: current release: %w", err)
	}
	res.Current, res.HasCurrent = cur, hasCur

	f, err := fetch(ctx, src, cur, hasCur, &opt, &res)
	if err != nil {
		return res, err
	}
	if f == nil {
		res.Action = NotModified
		return res, nil
	}
	res.Origin = f.Origin
	serial, err := inst.Verify(f.Data)
	if err != nil {
		return res, fmt.Errorf("sync: %s: %w: %w", f.Origin, ErrRefused, err)
	}
	if f.NameSerial != 0 && serial != f.NameSerial {
		return res, fmt.Errorf("sync: %s: %w: its name says serial %d, its signed manifest %d", f.Origin, ErrRefused, f.NameSerial, serial)
	}
	res.Serial = serial
	opt.progress("%s: verified, serial %d", f.Origin, serial)
	switch {
	case hasCur && serial == cur:
		res.Action = UpToDate
		return res, settle(f, serial)
	case hasCur && serial < cur:
		res.Action = Older
		return res, settle(f, serial)
	}
	if inst.Highest != nil {
		high, ok, err := inst.Highest()
		if err != nil {
			return res, fmt.Errorf("sync: %w", err)
		}
		if ok && serial < high {
			res.Action, res.Highest = Older, high
			opt.progress("%s: serial %d is older than the highest serial this node installed, %d: not installed", f.Origin, serial, high)
			return res, settle(f, serial)
		}
	}
	if hasCur {
		opt.progress("installing release %d (current %d)", serial, cur)
	} else {
		opt.progress("installing release %d (no current release)", serial)
	}
	if err := inst.Install(ctx, f.Data); err != nil {
		return res, fmt.Errorf("sync: install release %d: %w", serial, err)
	}
	res.Action = Installed
	return res, settle(f, serial)
}

func settle(f *Fetched, serial uint64) error {
	if f.Settle == nil {
		return nil
	}
	if err := f.Settle(serial); err != nil {
		return fmt.Errorf("sync: %s: %w", f.Origin, err)
	}
	return nil
}

// fetch calls src.Fetch up to opt.Attempts times, waiting an exponential
// backoff with jitter between attempts.
func fetch(ctx context.Context, src Source, cur uint64, hasCur bool, opt *Options, res *Result) (*Fetched, error) {
	backoff := opt.Backoff
	var errs []error
	for {
		res.Attempts++
		f, err := src.Fetch(ctx, cur, hasCur)
		if err == nil {
			return f, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", res.Attempts, err))
		if errors.Is(err, ErrPermanent) || ctx.Err() != nil || res.Attempts >= opt.Attempts {
			return nil, fmt.Errorf("sync: fetch from %s: %w", src, errors.Join(errs...))
		}
		// Half fixed, half random: retries of a fleet spread out.
		wait := backoff/2 + opt.jitter(backoff/2+1)
		opt.progress("fetch from %s failed (attempt %d of %d): %v; retrying in %v", src, res.Attempts, opt.Attempts, err, wait.Round(time.Millisecond))
		if err := opt.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("sync: fetch from %s: %w", src, errors.Join(append(errs, err)...))
		}
		backoff = min(2*backoff, opt.MaxBackoff)
	}
}
