package render

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/render/nft"
)

// State is what one node runs for a site: the one computation of a node's
// desired state. The file renderer (Node: lbctl render, bundlediff) lists
// its files; the node's install (node/target.State) and drift check add
// the release serial and the probes to it.
type State struct {
	// VIPs sorted by Name.
	VIPs []VIP
	// Firewall is the node's nftables table as data.
	Firewall model.Firewall
	// BirdConf is the node's whole bird.conf.
	BirdConf []byte
	// Interface carries the VIP addresses (the node profile's).
	Interface string
}

// VIP is one VIP's part of a node's state: one HAProxy process.
type VIP struct {
	Name        string
	Addresses   []netip.Addr
	Transparent bool
	// Files are the VIP's files (haproxy.cfg, crt-lists) sorted by name.
	Files []haproxy.File
	// Backends are the HAProxy backends the files name, sorted by name.
	Backends []haproxy.Backend
}

// NodeState computes the desired state of node from site. Pure; all
// problems are returned together.
func NodeState(site *model.Site, node *model.Node, opts Options) (*State, error) {
	st := &State{Interface: node.VIPInterface}
	var errs []error
	if opts.HAProxy.SharedChecks == nil {
		opts.HAProxy.SharedChecks = haproxy.SharedChecks(site)
	}
	for i := range site.VIPs {
		v := &site.VIPs[i]
		files, backends, err := haproxy.RenderVIP(site, v, opts.HAProxy)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		slices.SortFunc(files, func(a, b haproxy.File) int { return strings.Compare(a.Name, b.Name) })
		st.VIPs = append(st.VIPs, VIP{Name: v.Name, Addresses: slices.Clone(v.Addresses), Transparent: v.Transparent,
			Files: files, Backends: backends})
	}
	slices.SortFunc(st.VIPs, func(a, b VIP) int { return strings.Compare(a.Name, b.Name) })
	var err error
	if st.BirdConf, err = bird.Config(site, node, opts.Bird); err != nil {
		errs = append(errs, err)
	}
	if st.Firewall, err = nft.Firewall(site, node); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("render node %s: %w", node.Hostname, errors.Join(errs...))
	}
	return st, nil
}

// Files lists the state's files under their relative paths, sorted by
// Path; the firewall comes as its review text (NFTText).
func (s *State) Files() []File {
	var files []File
	for _, v := range s.VIPs {
		for _, f := range v.Files {
			files = append(files, File{Path: VIPPath(v.Name, f.Name), Data: f.Data})
		}
	}
	files = append(files, File{Path: BirdConf, Data: s.BirdConf}, File{Path: NFTText, Data: []byte(nft.NFTText(s.Firewall))})
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files
}
