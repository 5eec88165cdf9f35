package ops

import (
	"context"
	"time"

	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/servers"
	"github.com/lbctl/lbctl/node/setup"
)

// SetServer takes a backend server out of service on this node, or back
// in, in every VIP of the current release using it (servers.Do), and
// returns the changes made.
func SetServer(ctx context.Context, cfg *config.Config, store *release.Store, req servers.Request) ([]servers.Change, error) {
	n := servers.Node{Dir: cfg.StateDir, Socket: setup.AdminSocket(cfg)}
	r, err := current(store)
	if err != nil {
		return nil, err
	}
	if r != nil {
		n.VIPs = r.State.VIPs
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return servers.Do(ctx, n, req)
}
