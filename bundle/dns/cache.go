package dns

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
)

// NewCache returns a Resolver that asks r once per name and then repeats
// its answer, so that a build resolves each name once and uses one answer
// for it throughout. Names differing only in case or a trailing dot share
// an entry. Concurrent lookups of one name wait for a single query. Answers,
// ErrNotFound and ErrCNAMELoop are kept; other errors (timeouts, server failures) are
// not, so a later lookup asks again. It is safe for concurrent use.
func NewCache(r Resolver) Resolver {
	return &cache{r: r, entries: map[string]*entry{}}
}

type cache struct {
	r       Resolver
	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	done  chan struct{}
	addrs []netip.Addr
	err   error
}

func (c *cache) Lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	key, err := canonical(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok {
		e = &entry{done: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()
		e.addrs, e.err = c.r.Lookup(ctx, name)
		if e.err != nil && !errors.Is(e.err, ErrNotFound) && !errors.Is(e.err, ErrCNAMELoop) {
			c.mu.Lock()
			delete(c.entries, key)
			c.mu.Unlock()
		}
		close(e.done)
	} else {
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return slices.Clone(e.addrs), e.err
}
