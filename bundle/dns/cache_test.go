package dns

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingResolver counts lookups and can fail the first n of them.
type countingResolver struct {
	r     Resolver
	calls atomic.Int32
	fail  atomic.Int32
	delay time.Duration
}

var errFlaky = errors.New("flaky server")

func (c *countingResolver) Lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	c.calls.Add(1)
	time.Sleep(c.delay)
	if c.fail.Add(-1) >= 0 {
		return nil, errFlaky
	}
	return c.r.Lookup(ctx, name)
}

func TestCache(t *testing.T) {
	inner := &countingResolver{r: loadTestZone(t), delay: 20 * time.Millisecond}
	c := NewCache(inner)
	for _, tc := range zoneCases {
		checkLookup(t, c, tc)
	}
	first := inner.calls.Load()
	// Same answers again, from the cache; other spellings share entries.
	for _, tc := range zoneCases {
		checkLookup(t, c, tc)
	}
	checkLookup(t, c, lookupCase{name: "WWW.EXAMPLE.ORG.", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")})
	if got := inner.calls.Load(); got != first {
		t.Errorf("second round asked the resolver %d more times", got-first)
	}

	// Concurrent lookups of a new name make one query.
	before := inner.calls.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { checkLookup(t, c, lookupCase{name: "mail.example.org", want: addrs("192.0.2.25")}) })
	}
	wg.Wait()
	if got := inner.calls.Load() - before; got != 1 {
		t.Errorf("20 concurrent lookups made %d queries, want 1", got)
	}

	// Callers cannot change cached answers.
	got, _ := c.Lookup(context.Background(), "www.example.org")
	got[0] = netip.MustParseAddr("192.0.2.254")
	checkLookup(t, c, lookupCase{name: "www.example.org", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")})
}

func TestCacheDoesNotKeepTransientErrors(t *testing.T) {
	inner := &countingResolver{r: loadTestZone(t)}
	inner.fail.Store(1)
	c := NewCache(inner)
	if _, err := c.Lookup(context.Background(), "www.example.org"); !errors.Is(err, errFlaky) {
		t.Fatalf("first lookup: %v, want the flaky error", err)
	}
	checkLookup(t, c, lookupCase{name: "www.example.org", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")})
	checkLookup(t, c, lookupCase{name: "www.example.org", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")})
	if n := inner.calls.Load(); n != 2 {
		t.Errorf("resolver asked %d times, want 2 (failure, then one success)", n)
	}
}

func TestCacheOverClient(t *testing.T) {
	s := startTestServer(t)
	c := NewCache(NewClient(s.addr))
	for range 3 {
		checkLookup(t, c, lookupCase{name: "alias2.example.org", want: addrs("192.0.2.10", "192.0.2.11", "2001:db8::10")})
		checkLookup(t, c, lookupCase{name: "missing.example.org", wantErr: ErrNotFound})
	}
	if n := s.total(); n != 4 {
		t.Errorf("server got %d queries, want 4 (A and AAAA for two names)", n)
	}
}
