package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/host"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
)

// DrainRequest is `lbctl drain` (On) or `lbctl undrain`: the VIPs named,
// or every VIP.
type DrainRequest struct {
	On    bool
	All   bool
	Names []string
}

// SetDrains records the drain state a request asks for. A name the current
// release does not have is an UnknownVIPError and changes nothing.
func SetDrains(store *release.Store, req DrainRequest) error {
	d, err := store.ReadDrains()
	if err != nil {
		return err
	}
	if cur, ok, _ := store.Current(); ok && len(req.Names) > 0 {
		r, err := store.Load(cur)
		if err != nil {
			return err
		}
		if err := checkVIPs(r, req.Names); err != nil {
			return err
		}
	}
	switch {
	case req.On && req.All:
		d.All = true
	case req.On:
		d.VIPs = append(d.VIPs, req.Names...)
	case req.All:
		d = health.Drains{}
	default:
		d.VIPs = slices.DeleteFunc(d.VIPs, func(v string) bool { return slices.Contains(req.Names, v) })
	}
	return store.WriteDrains(d)
}

// GracefulShutdown is the first step of `lbctl drain --all`: every
// announced route gets the GRACEFUL_SHUTDOWN community (RFC 8326), which
// routers honouring it (the route reflector stanzas lbctl renders) rank
// below every other path, and stays announced for wait so that traffic
// moves to the other nodes before SetDrains withdraws the routes.
// `lbctl undrain --all` clears it. It returns what was announced, after
// waiting (ctx ends the wait early, with its error).
func GracefulShutdown(ctx context.Context, cfg *config.Config, store *release.Store, wait time.Duration) (*Announced, error) {
	d, err := store.ReadDrains()
	if err != nil {
		return nil, err
	}
	d.GracefulShutdown = true
	if err := store.WriteDrains(d); err != nil {
		return nil, err
	}
	ann, err := Announce(ctx, cfg, store)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ann, ctx.Err()
	case <-t.C:
	}
	return ann, nil
}

// Announced is how the announcements were brought up to date.
type Announced struct {
	// ViaAgent is true when the agent did it; VIPs is then what it
	// announces now. Otherwise BIRD was told directly.
	ViaAgent bool
	VIPs     []string
}

// Announce makes the drain state take effect: through the agent when it
// runs, else directly through BIRD.
func Announce(ctx context.Context, cfg *config.Config, store *release.Store) (*Announced, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := (agent.Client{Socket: cfg.Agent.Socket}).Reload(ctx)
	if err == nil {
		return &Announced{ViaAgent: true, VIPs: st.Announced}, nil
	}
	if !errors.Is(err, agent.ErrNotRunning) {
		return nil, err
	}
	ann, err := setup.NewAnnouncer(cfg)
	if err != nil {
		return nil, err
	}
	defer ann.Close()
	a, err := store.ReadAnnounceable()
	if err != nil {
		return nil, err
	}
	h := &host.Host{Store: store, Announcer: ann}
	if err := h.AnnounceVIPs(ctx, a.VIPs); err != nil {
		return nil, fmt.Errorf("agent not running; announcing through BIRD: %w", err)
	}
	return &Announced{}, nil
}

// WaitDrained waits until the named VIPs of the current release (none:
// every VIP) have no open connection or wait passes, and returns how many
// each still has open. They are not closed: HAProxy keeps serving them
// and, with flow handoff, the peers forward their packets here whatever
// the router does. With nothing installed or wait <= 0 it waits for
// nothing and waited is false.
func WaitDrained(ctx context.Context, store *release.Store, names []string, wait time.Duration) (left map[string]int, waited bool, err error) {
	cur, ok, err := store.Current()
	if err != nil || !ok || wait <= 0 {
		return nil, false, err
	}
	r, err := store.Load(cur)
	if err != nil {
		return nil, false, err
	}
	left, err = host.WaitDrained(ctx, host.DrainLocals(r.State, names), wait)
	return left, err == nil, err
}
