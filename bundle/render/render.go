// Package render turns the resolved model into the text files an LB node
// runs on: one HAProxy configuration per VIP (render/haproxy), the node's
// bird.conf (render/bird) and the review text of its nftables ruleset
// (render/nft). Node collects them under stable relative paths; the
// subpackages render/backendfw and render/icinga2 produce files for other
// machines (backend hosts, route reflectors, monitoring).
//
// NodeState is the one computation of what a node runs (state.go): Node
// lists its files, and the node side (node/target) installs it and checks
// drift against it. Renderers are pure functions of a model.Site and a
// model.Node: no file system, clock, network or exec. Paths on the node
// come from Options.
package render

import (
	"path"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
)

// Relative paths of a node's rendered files.
const (
	// VIPDir holds one directory per VIP: VIPDir/<vip>/haproxy.cfg and the
	// crt-lists next to it (node side: /etc/lbctl/vips/<vip>/).
	VIPDir = "vips"
	// BirdConf is the node's bird.conf (node side: /etc/bird/bird.conf).
	BirdConf = "bird/bird.conf"
	// NFTText is the nft text of the node's table inet lbctl, for review;
	// the node programs the same table from nft.Firewall over netlink.
	NFTText = "nftables/lbctl.nft"
)

// File is one rendered file.
type File struct {
	// Path is relative and slash-separated.
	Path string
	Data []byte
}

// Options of the renderers; zero values mean the node defaults.
type Options struct {
	HAProxy haproxy.Options
	Bird    bird.Options
}

// VIPPath is the relative path of a file of a VIP.
func VIPPath(vip, name string) string { return path.Join(VIPDir, vip, name) }

// Node renders every file node needs, sorted by Path: the files of
// NodeState. All problems are returned together.
func Node(site *model.Site, node *model.Node, opts Options) ([]File, error) {
	st, err := NodeState(site, node, opts)
	if err != nil {
		return nil, err
	}
	return st.Files(), nil
}
