package bird_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/health/bird/birdtest"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

type fixture struct {
	dir  string
	fake *birdtest.Fake
	a    *bird.Announcer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	p4, p6 := filepath.Join(dir, "announce4.conf"), filepath.Join(dir, "announce6.conf")
	fake := birdtest.New("vips4", p4, "vips6", p6)
	a, err := bird.NewAnnouncer(bird.AnnouncerConfig{
		Include4: p4, Include6: p6,
		Dial:          fake.Dial,
		VerifyTimeout: 20 * time.Millisecond,
		RetryMin:      time.Millisecond,
		RetryMax:      10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return &fixture{dir: dir, fake: fake, a: a}
}

func (f *fixture) wantFake(t *testing.T, lines ...string) {
	t.Helper()
	if got, want := f.fake.String(), strings.Join(lines, "\n"); got != want {
		t.Errorf("BIRD state:\n%s\nwant\n%s", got, want)
	}
}

func (f *fixture) wantCounts(t *testing.T, configures, writes, dials uint64) {
	t.Helper()
	s := f.a.State()
	if s.Configures != configures || s.Writes != writes || s.Dials != dials {
		t.Errorf("configures/writes/dials = %d/%d/%d, want %d/%d/%d", s.Configures, s.Writes, s.Dials, configures, writes, dials)
	}
	if st := f.fake.Stats(); uint64(st.Configures) != configures {
		t.Errorf("fake saw %d configures, announcer counted %d", st.Configures, configures)
	}
}

func TestAnnouncerSet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)

	if err := f.a.Set(ctx, pfx("192.0.2.11/32", "2001:db8::10/128", "192.0.2.10/32")); err != nil {
		t.Fatal(err)
	}
	f.wantFake(t, "vips4 192.0.2.10/32", "vips4 192.0.2.11/32", "vips6 2001:db8::10/128")
	f.wantCounts(t, 1, 2, 1)
	data, err := os.ReadFile(filepath.Join(f.dir, "announce4.conf"))
	if err != nil || !strings.HasSuffix(string(data), "route 192.0.2.10/32 blackhole;\nroute 192.0.2.11/32 blackhole;\n") {
		t.Errorf("announce4.conf: %q %v", data, err)
	}

	// The same set again: no write, no configure.
	if err := f.a.Set(ctx, pfx("2001:db8::10/128", "192.0.2.10/32", "192.0.2.11/32")); err != nil {
		t.Fatal(err)
	}
	f.wantCounts(t, 1, 2, 1)

	// Only the IPv4 file changes.
	if err := f.a.Set(ctx, pfx("192.0.2.11/32", "2001:db8::10/128")); err != nil {
		t.Fatal(err)
	}
	f.wantFake(t, "vips4 192.0.2.11/32", "vips6 2001:db8::10/128")
	f.wantCounts(t, 2, 3, 1)

	// Withdraw everything.
	if err := f.a.Set(ctx, nil); err != nil {
		t.Fatal(err)
	}
	f.wantFake(t)
	f.wantCounts(t, 3, 5, 1)
	st := f.a.State()
	if st.Err != nil || len(st.Applied) != 0 || st.Applied == nil || st.AppliedAt.IsZero() {
		t.Errorf("state after withdraw: %+v", st)
	}

	// No temporary files are left behind.
	entries, _ := os.ReadDir(f.dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"announce4.conf", "announce6.conf"}) {
		t.Errorf("files in include dir: %v", names)
	}

	if err := f.a.Set(ctx, pfx("192.0.2.10/24")); err == nil || !strings.Contains(err.Error(), "host bits set") {
		t.Errorf("non-canonical prefix: %v", err)
	}
}

func TestAnnouncerConfigureErrorThenRecovers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bad := &bird.ReplyError{Command: "configure", Code: bird.CodeConfigFileError, Message: "/etc/bird/bird.conf:3:1 syntax error"}
	f.fake.FailConfigure(bad)
	err := f.a.Set(ctx, pfx("192.0.2.10/32"))
	if !errors.Is(err, bad) {
		t.Fatalf("got %v, want the configure error", err)
	}
	f.wantFake(t)
	if st := f.a.State(); !errors.Is(st.Err, bad) || st.Applied != nil || !slices.Equal(st.Desired, pfx("192.0.2.10/32")) {
		t.Errorf("state: %+v", st)
	}
	// Files already hold the set, but BIRD does not: Set notices and configures.
	if err := f.a.Set(ctx, pfx("192.0.2.10/32")); err != nil {
		t.Fatal(err)
	}
	f.wantFake(t, "vips4 192.0.2.10/32")
	f.wantCounts(t, 2, 2, 1)
}

func TestAnnouncerReconnectsAfterRestart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.a.Set(ctx, pfx("192.0.2.10/32")); err != nil {
		t.Fatal(err)
	}
	f.fake.Restart()
	if err := f.a.Set(ctx, pfx("192.0.2.10/32", "192.0.2.11/32")); err != nil {
		t.Fatal(err)
	}
	f.wantFake(t, "vips4 192.0.2.10/32", "vips4 192.0.2.11/32")
	f.wantCounts(t, 2, 3, 2)

	// A failure on a fresh connection is reported, not retried in a loop.
	f.fake.FailConfigure(fmt.Errorf("connection reset"), fmt.Errorf("connection reset"))
	if err := f.a.Set(ctx, pfx("192.0.2.12/32")); err == nil {
		t.Error("Set succeeded although every configure failed")
	}
	if st := f.fake.Stats(); st.Dials != 3 {
		t.Errorf("dials %d, want 3 (one redial)", st.Dials)
	}
}

func TestAnnouncerVerifyMismatch(t *testing.T) {
	f := newFixture(t)
	f.fake.Disable("vips6")
	err := f.a.Set(context.Background(), pfx("192.0.2.10/32", "2001:db8::10/128"))
	var me *bird.MismatchError
	if !errors.As(err, &me) || !slices.Equal(me.Missing, pfx("2001:db8::10/128")) || me.Unexpected != nil {
		t.Fatalf("got %v, want a mismatch with 2001:db8::10/128 missing", err)
	}
}

func TestAnnouncerCoalescesBursts(t *testing.T) {
	f := newFixture(t)
	f.fake.SetConfigureDelay(5 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.a.Run(ctx) }()

	var last []netip.Prefix
	for i := range 100 {
		last = pfx(fmt.Sprintf("192.0.2.%d/32", i), fmt.Sprintf("2001:db8::%x/128", i))
		f.a.Request(last)
		if i%20 == 19 {
			time.Sleep(time.Millisecond) // let some requests arrive while a configure is in flight
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(f.a.State().Applied, last) {
		if time.Now().After(deadline) {
			t.Fatalf("last request not applied: %+v", f.a.State())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	f.wantFake(t, "vips4 192.0.2.99/32", "vips6 2001:db8::63/128")
	st := f.fake.Stats()
	t.Logf("100 requests: %d configures", st.Configures)
	if st.Configures > 5 || st.MaxInFlight != 1 {
		t.Errorf("configures %d (want <= 5), max in flight %d (want 1)", st.Configures, st.MaxInFlight)
	}
}

func TestAnnouncerRunRetries(t *testing.T) {
	f := newFixture(t)
	f.fake.FailConfigure(
		&bird.ReplyError{Command: "configure", Code: bird.CodeConfigFileError, Message: "x"},
		&bird.ReplyError{Command: "configure", Code: bird.CodeConfigFileError, Message: "x"},
		&bird.ReplyError{Command: "configure", Code: bird.CodeConfigFileError, Message: "x"},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.a.Run(ctx) }()
	f.a.Request(pfx("192.0.2.10/32"))
	for f.a.State().Applied == nil && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	f.wantFake(t, "vips4 192.0.2.10/32")
	if st := f.fake.Stats(); st.Configures != 4 {
		t.Errorf("configures %d, want 4 (3 failures, 1 success)", st.Configures)
	}
	if st := f.a.State(); st.Err != nil {
		t.Errorf("state error after success: %v", st.Err)
	}
}

func TestNewAnnouncerRejects(t *testing.T) {
	dial := func(context.Context) (bird.Controller, error) { return nil, errors.New("x") }
	for _, tt := range []struct {
		cfg  bird.AnnouncerConfig
		want string
	}{
		{bird.AnnouncerConfig{Include4: "a", Dial: dial}, "include file paths"},
		{bird.AnnouncerConfig{Include4: "a", Include6: "a", Dial: dial}, "same file"},
		{bird.AnnouncerConfig{Include4: "a", Include6: "b", Protocol4: "x-y", Dial: dial}, "invalid protocol"},
		{bird.AnnouncerConfig{Include4: "a", Include6: "b", Protocol4: "v", Protocol6: "v", Dial: dial}, "same protocol"},
		{bird.AnnouncerConfig{Include4: "a", Include6: "b"}, "no dial function"},
	} {
		if _, err := bird.NewAnnouncer(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestAnnouncerGracefulShutdown: turning graceful shutdown on rewrites the
// include files with GRACEFUL_SHUTDOWN on every route and reconfigures
// even though the set is the same; turning it off takes it away again.
func TestAnnouncerGracefulShutdown(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	set := pfx("192.0.2.10/32", "2001:db8::10/128")
	if err := f.a.Set(ctx, set); err != nil {
		t.Fatal(err)
	}
	if !f.a.SetGracefulShutdown(true) || f.a.SetGracefulShutdown(true) {
		t.Error("SetGracefulShutdown does not report the change once")
	}
	if err := f.a.Set(ctx, set); err != nil {
		t.Fatal(err)
	}
	f.wantFake(t, "vips4 192.0.2.10/32 gshut", "vips6 2001:db8::10/128 gshut")
	f.wantCounts(t, 2, 4, 1)
	if !f.a.State().GracefulShutdown {
		t.Error("state does not show graceful shutdown")
	}
	f.a.SetGracefulShutdown(false)
	if err := f.a.Set(ctx, set); err != nil {
		t.Fatal(err)
	}
	f.wantFake(t, "vips4 192.0.2.10/32", "vips6 2001:db8::10/128")
}
