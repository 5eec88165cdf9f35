package intent

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/lbctl/lbctl/bundle/dns"
	"github.com/lbctl/lbctl/bundle/inventory"
	"github.com/lbctl/lbctl/bundle/model"
)

// Options override what site.yaml says about name resolution.
type Options struct {
	// Zone is a zone file to resolve names with, instead of site.yaml's.
	Zone string
	// DNS is a DNS server (host or host:port), instead of site.yaml's.
	DNS string
	// Resolver, when set, is used instead of any zone or DNS server.
	Resolver dns.Resolver
}

// Resolve loads the intents tree in dir, opens the inventory and the zone
// or DNS server that site.yaml (or opts) names, and resolves the tree. All
// problems are returned at once; the ones in intents files are Errors.
func Resolve(ctx context.Context, dir string, opts Options) (*model.Site, error) {
	t, err := Load(dir)
	if err != nil {
		return nil, err
	}
	inv, r, err := t.Sources(opts)
	if err != nil {
		return nil, err
	}
	return t.Resolve(ctx, r, inv)
}

// Sources opens the inventory and the resolver the site file names, with
// opts overriding it. The inventory is nil when the site names none; the
// resolver is nil when there is neither zone nor DNS server, which makes
// every lookup fail.
func (t *Tree) Sources(opts Options) (Inventory, dns.Resolver, error) {
	var errs []error
	var inv Inventory
	if t.Site.Inventory != "" {
		i, err := inventory.Load(filepath.Join(t.Root, filepath.FromSlash(t.Site.Inventory)))
		if err != nil {
			errs = append(errs, err)
		} else {
			inv = i
		}
	}
	r := opts.Resolver
	zone, server := t.Site.Zone, t.Site.DNS
	if opts.Zone != "" || opts.DNS != "" {
		zone, server = "", opts.DNS
		if opts.Zone != "" {
			zone = opts.Zone
		}
	} else if zone != "" {
		zone = filepath.Join(t.Root, filepath.FromSlash(zone))
	}
	switch {
	case r != nil:
	case zone != "" && server != "":
		errs = append(errs, errors.New("set a zone or a DNS server, not both"))
	case zone != "":
		z, err := dns.LoadZone(zone)
		if err != nil {
			errs = append(errs, err)
		} else {
			r = z
		}
	case server != "":
		r = dns.NewCache(dns.NewClient(server))
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return inv, r, nil
}
