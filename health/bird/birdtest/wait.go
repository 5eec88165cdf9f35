package birdtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lbctl/lbctl/health/bird"
)

// WaitEstablished polls each client's BIRD every 20 ms until its BGP
// protocol is established, for at most timeout in all; the error shows the
// protocols last seen.
func WaitEstablished(ctx context.Context, timeout time.Duration, clients ...*bird.Client) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, c := range clients {
		for {
			ps, err := c.Protocols(ctx)
			if err == nil {
				if i := slices.IndexFunc(ps, func(p bird.Protocol) bool { return p.Proto == "BGP" }); i >= 0 && ps[i].Established() {
					break
				}
			}
			select {
			case <-ctx.Done():
				if err != nil {
					return fmt.Errorf("BGP session not established: %w", err)
				}
				return fmt.Errorf("BGP session not established within %v: %+v", timeout, ps)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// WaitSocket waits up to timeout for a BIRD to answer on its control socket
// and returns the last error if it never did.
func WaitSocket(sock string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := bird.Dial(context.Background(), sock)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bird control socket %s: %w", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Client dials the BIRD control socket sock for the rest of the test.
func Client(t testing.TB, sock string) *bird.Client {
	t.Helper()
	c, err := bird.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
