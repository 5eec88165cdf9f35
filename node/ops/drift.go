package ops

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/lbctl/lbctl/bundle/render/bird"
	birdc "github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/drift"
	"github.com/lbctl/lbctl/node/drift/observe"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/node/netlink/netstate"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/systemd"
)

// Drift is what `lbctl verify` found: the differences between the live
// node and its current release, and what could not be read (as "could not
// read: ..." lines).
type Drift struct {
	Serial uint64
	Diffs  []string
}

// ErrNoCurrent means the node has no current release.
var ErrNoCurrent = errors.New("no release installed on this node")

// Verify compares the live node with its current release. A store with no
// current release gives ErrNoCurrent.
func Verify(ctx context.Context, cfg *config.Config, store *release.Store) (*Drift, error) {
	r, err := current(store)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, ErrNoCurrent
	}
	units, err := systemd.NewDBus(ctx)
	if err != nil {
		return nil, err
	}
	defer units.Close()
	obs, oerr := Observer(cfg, store, units)(ctx)
	if obs == nil {
		return nil, oerr
	}
	d := &Drift{Serial: r.Serial, Diffs: drift.Compare(r.State, obs)}
	if oerr != nil {
		for _, l := range strings.Split(oerr.Error(), "\n") {
			d.Diffs = append(d.Diffs, "could not read: "+l)
		}
	}
	return d, nil
}

// Observer reads the live node for verify and repair: the nftables table,
// the addresses on the current release's VIP interface, the lb-haproxy@
// units, the VIP and unit directories, bird.conf and BIRD's VIP routes,
// with the prefixes BIRD may announce (announceable and not drained, from
// the store). It returns what it could read even when some of it failed;
// it needs no network and no agent.
func Observer(cfg *config.Config, store *release.Store, units systemd.Manager) install.Observer {
	return func(ctx context.Context) (*drift.Observed, error) {
		src, err := driftSources(cfg, store, units)
		if err != nil {
			return nil, err
		}
		obs, oerr := observe.Node(ctx, src)
		ann, _ := store.ReadAnnounceable()
		drains, _ := store.ReadDrains()
		for _, v := range ann.VIPs {
			if drains.Drained(v.Name) {
				continue
			}
			for _, a := range v.Addresses {
				obs.MayAnnounce = append(obs.MayAnnounce, netstate.HostPrefix(a))
			}
		}
		return obs, oerr
	}
}

// driftSources connects what Observe reads, on the VIP interface of the
// current release.
func driftSources(cfg *config.Config, store *release.Store, units systemd.Manager) (observe.Sources, error) {
	ifname := netlink.DefaultInterface
	if r, err := current(store); err != nil {
		return observe.Sources{}, err
	} else if r != nil && r.State.Interface != "" {
		ifname = r.State.Interface
	}
	fw, err := nft.New()
	if err != nil {
		return observe.Sources{}, err
	}
	nl, err := netlink.New(netlink.WithInterface(ifname))
	if err != nil {
		return observe.Sources{}, err
	}
	return observe.Sources{NFT: fw, Net: nl, Units: units, VIPDir: cfg.VIPDir, UnitDir: cfg.UnitDir,
		BirdConf: cfg.Bird.Config, Routes: birdRoutes(cfg.Bird.Socket)}, nil
}

// birdRoutes reads BIRD's VIP routes, IPv4 and IPv6, over its control
// socket.
func birdRoutes(socket string) func(context.Context) ([]netip.Prefix, error) {
	return func(ctx context.Context) ([]netip.Prefix, error) {
		bc, err := birdc.Dial(ctx, socket)
		if err != nil {
			return nil, err
		}
		defer bc.Close()
		var all []netip.Prefix
		for _, p := range []string{bird.Protocol4, bird.Protocol6} {
			rs, err := bc.Routes(ctx, p)
			if err != nil {
				return nil, err
			}
			all = append(all, rs...)
		}
		return all, nil
	}
}
