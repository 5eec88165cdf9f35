package servers

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Reconciler keeps every VIP's HAProxy showing the state file: a reload,
// restart or install starts HAProxy with every server ready, and the
// reconciler sets the operator's states again within Interval. It reads
// only the VIPs known to use a named server on each pass, and every VIP on
// a full pass (every Rescan, and when the file or the VIP set changes).
type Reconciler struct {
	Dir    string
	Socket func(vip string) string
	VIPs   func() []string
	// Interval between passes. Default 250ms.
	Interval time.Duration
	// Rescan is the interval of full passes. Default 5s.
	Rescan time.Duration
	// Grid, when set, puts every pass on a multiple of Grid since the
	// epoch (Interval should then be a multiple of Grid), so that the
	// passes share the wake-ups of other work on that grid.
	Grid time.Duration
	Log  *slog.Logger

	last     File
	lastVIPs []string
	uses     map[string]bool
	lastFull time.Time
}

// Run reconciles until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	if r.Interval <= 0 {
		r.Interval = 250 * time.Millisecond
	}
	if r.Rescan <= 0 {
		r.Rescan = 5 * time.Second
	}
	if r.Grid > 0 {
		now := time.Now()
		wait := now.Truncate(r.Grid).Add(r.Grid).Sub(now)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		r.Pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass reconciles once and returns what it changed.
func (r *Reconciler) Pass(ctx context.Context) []Change {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := Read(r.Dir)
	if err != nil {
		log.Error("server maintenance", "err", err)
		return nil
	}
	if len(f.Entries) == 0 {
		r.last, r.uses = f, nil
		return nil
	}
	vips := r.VIPs()
	full := r.uses == nil || !slices.Equal(f.Entries, r.last.Entries) || !slices.Equal(vips, r.lastVIPs) ||
		time.Since(r.lastFull) >= r.Rescan
	if full {
		r.uses, r.lastFull = map[string]bool{}, time.Now()
	}
	r.last, r.lastVIPs = f, vips
	var all []Change
	for _, vip := range vips {
		if !full && !r.uses[vip] {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rs, err := Show(pctx, r.Socket(vip))
		if err == nil {
			uses := slices.ContainsFunc(rs, func(s Runtime) bool { return f.Want(vip, s.Name) != "" })
			r.uses[vip] = uses
			if uses {
				var ch []Change
				ch, err = apply(pctx, r.Socket(vip), vip, rs, f, nil)
				for _, c := range ch {
					log.Info("server state re-applied", "vip", c.VIP, "backend", c.Backend, "server", c.Server, "from", c.From, "to", c.To)
				}
				all = append(all, ch...)
			}
		}
		cancel()
		if err != nil {
			r.uses[vip] = true // look again on the next pass
			// A VIP whose HAProxy is down is re-applied when it is back.
			log.Debug("server maintenance", "vip", vip, "err", err)
		}
	}
	return all
}
