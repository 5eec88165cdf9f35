package sync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeBundle is a stand-in for a signed bundle: "signed:<serial>:<payload>"
// verifies, anything else does not.
func fakeBundle(serial uint64) []byte { return []byte(fmt.Sprintf("signed:%d:payload", serial)) }

// fakeNode records what Sync asked of it.
type fakeNode struct {
	current    uint64
	hasCurrent bool
	verified   [][]byte
	installed  [][]byte
	installErr error
}

func (n *fakeNode) installer() Installer {
	return Installer{
		Verify: func(b []byte) (uint64, error) {
			n.verified = append(n.verified, b)
			s, ok := strings.CutPrefix(string(b), "signed:")
			if !ok {
				return 0, errors.New("bad signature")
			}
			serial, rest, _ := strings.Cut(s, ":")
			if rest != "payload" {
				return 0, errors.New("manifest hash mismatch")
			}
			return strconv.ParseUint(serial, 10, 64)
		},
		Current: func() (uint64, bool, error) { return n.current, n.hasCurrent, nil },
		Install: func(_ context.Context, b []byte) error {
			if n.installErr != nil {
				return n.installErr
			}
			n.installed = append(n.installed, b)
			serial, _ := strconv.ParseUint(strings.Split(string(b), ":")[1], 10, 64)
			n.current, n.hasCurrent = serial, true
			return nil
		},
	}
}

// fakeSource returns its bundles in turn (nil data: 304), failing first
// with the queued errors.
type fakeSource struct {
	errs    []error
	fetched *Fetched
	calls   int
	settled []uint64
}

func (s *fakeSource) String() string { return "fake" }

func (s *fakeSource) Fetch(ctx context.Context, _ uint64, _ bool) (*Fetched, error) {
	s.calls++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return nil, err
	}
	if s.fetched == nil {
		return nil, nil
	}
	f := *s.fetched
	f.Settle = func(serial uint64) error { s.settled = append(s.settled, serial); return nil }
	return &f, nil
}

// noWait records the waits instead of sleeping; jitter is its maximum.
type noWait struct{ waits []time.Duration }

func (w *noWait) opts(o Options) Options {
	o.sleep = func(ctx context.Context, d time.Duration) error { w.waits = append(w.waits, d); return ctx.Err() }
	o.jitter = func(max time.Duration) time.Duration { return max - 1 }
	return o
}

func TestSyncDecisions(t *testing.T) {
	tests := []struct {
		name        string
		current     uint64 // 0: no current release
		data        []byte // nil: the source says not modified
		nameSerial  uint64
		want        Action
		wantErr     error
		wantInstall bool
		wantSettled []uint64
	}{
		{name: "first install", data: fakeBundle(7), want: Installed, wantInstall: true, wantSettled: []uint64{7}},
		{name: "newer installed", current: 6, data: fakeBundle(7), want: Installed, wantInstall: true, wantSettled: []uint64{7}},
		{name: "same serial skipped", current: 7, data: fakeBundle(7), want: UpToDate, wantSettled: []uint64{7}},
		{name: "older skipped", current: 9, data: fakeBundle(7), want: Older, wantSettled: []uint64{7}},
		{name: "not modified", current: 7, data: nil, want: NotModified},
		{name: "bad signature refused", current: 6, data: []byte("unsigned:8:payload"), wantErr: ErrRefused},
		{name: "tampered payload refused", current: 6, data: []byte("signed:8:pAyload"), wantErr: ErrRefused},
		{name: "name and signed serial differ", current: 6, data: fakeBundle(8), nameSerial: 9, wantErr: ErrRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &fakeNode{current: tt.current, hasCurrent: tt.current != 0}
			src := &fakeSource{}
			if tt.data != nil {
				src.fetched = &Fetched{Data: tt.data, Origin: "fake/bundle", NameSerial: tt.nameSerial}
			}
			var w noWait
			res, err := Sync(context.Background(), src, n.installer(), w.opts(Options{}))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if res.Action != tt.want {
				t.Errorf("action %q, want %q", res.Action, tt.want)
			}
			if got := len(n.installed) == 1; got != tt.wantInstall || len(n.installed) > 1 {
				t.Errorf("installed %q, want install %v", n.installed, tt.wantInstall)
			}
			if tt.wantInstall && string(n.installed[0]) != string(tt.data) {
				t.Errorf("installed %q, not the verified bytes %q", n.installed[0], tt.data)
			}
			if !slices.Equal(src.settled, tt.wantSettled) {
				t.Errorf("settled %v, want %v", src.settled, tt.wantSettled)
			}
			if tt.data == nil && len(n.verified) != 0 {
				t.Errorf("verified %d bundles on a 304", len(n.verified))
			}
		})
	}
}

// TestSyncInstallFailure: a failed install is reported and the source is
// not settled, so the next run fetches the bundle again.
func TestSyncInstallFailure(t *testing.T) {
	n := &fakeNode{current: 3, hasCurrent: true, installErr: errors.New("health gate: vip www unhealthy")}
	src := &fakeSource{fetched: &Fetched{Data: fakeBundle(4), Origin: "x"}}
	var w noWait
	res, err := Sync(context.Background(), src, n.installer(), w.opts(Options{}))
	if err == nil || !strings.Contains(err.Error(), "install release 4: health gate") {
		t.Fatalf("err = %v", err)
	}
	if res.Serial != 4 || res.Action != "" || len(src.settled) != 0 {
		t.Errorf("result %+v, settled %v", res, src.settled)
	}
}

func TestSyncRetries(t *testing.T) {
	flaky := errors.New("connection refused")
	t.Run("transient errors retried with growing backoff", func(t *testing.T) {
		n := &fakeNode{}
		src := &fakeSource{errs: []error{flaky, flaky, flaky}, fetched: &Fetched{Data: fakeBundle(5), Origin: "x"}}
		var w noWait
		var lines []string
		res, err := Sync(context.Background(), src, n.installer(), w.opts(Options{
			MaxDelay: 30 * time.Second, Attempts: 4, Backoff: time.Second, MaxBackoff: 3 * time.Second,
			Progress: func(s string) { lines = append(lines, s) }}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Attempts != 4 || res.Action != Installed || src.calls != 4 {
			t.Errorf("result %+v after %d calls", res, src.calls)
		}
		// The random delay first (jitter = its maximum), then backoffs of
		// 1s, 2s, 3s (capped), each half fixed and half random.
		want := []time.Duration{30*time.Second - 1, time.Second, 2 * time.Second, 3 * time.Second}
		if !slices.Equal(w.waits, want) {
			t.Errorf("waits %v, want %v", w.waits, want)
		}
		if res.Delay != 30*time.Second-1 {
			t.Errorf("delay %v", res.Delay)
		}
		if !strings.Contains(strings.Join(lines, "\n"), "attempt 3 of 4") {
			t.Errorf("progress lines:\n%s", strings.Join(lines, "\n"))
		}
	})
	t.Run("attempts are bounded", func(t *testing.T) {
		n := &fakeNode{}
		src := &fakeSource{errs: []error{flaky, flaky, flaky, flaky, flaky}, fetched: &Fetched{Data: fakeBundle(5)}}
		var w noWait
		res, err := Sync(context.Background(), src, n.installer(), w.opts(Options{Attempts: 3}))
		if !errors.Is(err, flaky) || src.calls != 3 || res.Attempts != 3 || len(n.installed) != 0 {
			t.Errorf("err %v, %d calls, result %+v", err, src.calls, res)
		}
		if !strings.Contains(err.Error(), "attempt 3: connection refused") {
			t.Errorf("err %v does not list the attempts", err)
		}
	})
	t.Run("permanent errors not retried", func(t *testing.T) {
		n := &fakeNode{}
		src := &fakeSource{errs: []error{fmt.Errorf("GET x: 404 Not Found: %w", ErrPermanent)}}
		var w noWait
		_, err := Sync(context.Background(), src, n.installer(), w.opts(Options{}))
		if !errors.Is(err, ErrPermanent) || src.calls != 1 || len(w.waits) != 0 {
			t.Errorf("err %v, %d calls, waits %v", err, src.calls, w.waits)
		}
	})
	t.Run("cancel stops the backoff", func(t *testing.T) {
		n := &fakeNode{}
		src := &fakeSource{errs: []error{flaky, flaky}, fetched: &Fetched{Data: fakeBundle(5)}}
		ctx, cancel := context.WithCancel(context.Background())
		opt := Options{Backoff: time.Hour}
		opt.sleep = func(ctx context.Context, d time.Duration) error { cancel(); return sleep(ctx, d) }
		start := time.Now()
		_, err := Sync(ctx, src, n.installer(), opt)
		if !errors.Is(err, context.Canceled) || src.calls != 1 || time.Since(start) > 10*time.Second {
			t.Errorf("err %v after %d calls", err, src.calls)
		}
	})
}

// TestRealDelay: the random delay really waits, within its bound.
func TestRealDelay(t *testing.T) {
	n := &fakeNode{}
	src := &fakeSource{}
	start := time.Now()
	res, err := Sync(context.Background(), src, n.installer(), Options{MaxDelay: 50 * time.Millisecond})
	el := time.Since(start)
	if err != nil || res.Delay >= 50*time.Millisecond || el < res.Delay || el > 5*time.Second {
		t.Errorf("err %v, delay %v, elapsed %v", err, res.Delay, el)
	}
}

func TestParseBundleName(t *testing.T) {
	tests := []struct {
		name string
		want uint64
	}{
		{"campus-42.bundle", 42},
		{"lbctl-1732464000.bundle", 1732464000},
		{"my-site-7.bundle", 7},
		{"campus-007.bundle", 7},
		{"campus-0.bundle", 0},
		{"campus.bundle", 0},
		{"-5.bundle", 0},
		{"campus-5.bundle.tmp", 0},
		{".campus-5.bundle", 0},
		{"campus-5a.bundle", 0},
		{"campus-+5.bundle", 0},
		{"campus-99999999999999999999.bundle", 0},
	}
	for _, tt := range tests {
		got, ok := ParseBundleName(tt.name)
		if got != tt.want || ok != (tt.want != 0) {
			t.Errorf("ParseBundleName(%q) = %d, %v; want %d", tt.name, got, ok, tt.want)
		}
	}
}

func TestDirSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := DirSource{Dir: dir}
	if _, err := src.Fetch(context.Background(), 0, false); !errors.Is(err, ErrPermanent) {
		t.Fatalf("empty directory: %v, want ErrPermanent", err)
	}
	write("campus-9.bundle", fakeBundle(9))
	write("campus-10.bundle", fakeBundle(10)) // numerically, not lexically, newest
	write("campus-3.bundle", fakeBundle(3))
	write("campus-99.bundle.part", fakeBundle(99))
	write(".campus-98.bundle", fakeBundle(98))
	write("latest.bundle", fakeBundle(97))
	if err := os.Mkdir(filepath.Join(dir, "old-96.bundle"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{current: 9, hasCurrent: true}
	var w noWait
	res, err := Sync(context.Background(), src, n.installer(), w.opts(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != Installed || res.Serial != 10 || res.Origin != filepath.Join(dir, "campus-10.bundle") {
		t.Errorf("result %+v", res)
	}
	if len(n.verified) != 1 {
		t.Errorf("verified %d bundles, want only the newest", len(n.verified))
	}
	// Again: nothing newer.
	res, err = Sync(context.Background(), src, n.installer(), w.opts(Options{}))
	if err != nil || res.Action != UpToDate {
		t.Errorf("second run: %+v, %v", res, err)
	}
	// A tampered newest bundle is refused, and nothing older is installed
	// instead.
	write("campus-11.bundle", []byte("signed:11:tampered"))
	res, err = Sync(context.Background(), src, n.installer(), w.opts(Options{}))
	if !errors.Is(err, ErrRefused) || len(n.installed) != 1 || n.current != 10 {
		t.Errorf("tampered: %+v, %v, installed %q", res, err, n.installed)
	}
	// A file whose name promises another serial than it carries.
	write("campus-12.bundle", fakeBundle(13))
	if _, err = Sync(context.Background(), src, n.installer(), w.opts(Options{})); !errors.Is(err, ErrRefused) || n.current != 10 {
		t.Errorf("renamed bundle: %v, current %d", err, n.current)
	}
	// Size bound.
	write("campus-14.bundle", fakeBundle(14))
	if _, err := (DirSource{Dir: dir, MaxSize: 4}).Fetch(context.Background(), 0, false); !errors.Is(err, ErrRefused) {
		t.Errorf("oversized: %v", err)
	}
}

// After a rollback from 20 to 15, sync installs 20 again (the node's
// newest), never a bundle between 15 and the highest serial installed:
// that is a stale source or a replay, and sync never rolls a node back.
func TestSyncBelowHighest(t *testing.T) {
	for _, c := range []struct {
		offered uint64
		want    Action
	}{{18, Older}, {20, Installed}, {21, Installed}, {12, Older}} {
		n := &fakeNode{current: 15, hasCurrent: true}
		inst := n.installer()
		inst.Highest = func() (uint64, bool, error) { return 20, true, nil }
		src := &fakeSource{fetched: &Fetched{Data: fakeBundle(c.offered), Origin: "x"}}
		res, err := Sync(context.Background(), src, inst, Options{})
		if err != nil || res.Action != c.want {
			t.Fatalf("offered %d: %+v %v, want %s", c.offered, res, err, c.want)
		}
		if c.want == Older && (len(n.installed) > 0 || (c.offered > 15 && res.Highest != 20)) {
			t.Fatalf("offered %d: installed %q, result %+v", c.offered, n.installed, res)
		}
	}
}
