package intent

// SiteFile is site.yaml at the root of an intents tree. Paths are relative
// to the tree root.
type SiteFile struct {
	Site       string     `yaml:"site" required:"true" doc:"Name of the site."`
	Inventory  string     `yaml:"inventory" doc:"Ansible YAML inventory with the backend groups and hosts."`
	Zone       string     `yaml:"zone" doc:"Zone file (RFC 1035 master format) answering all DNS lookups, for hermetic builds."`
	DNS        string     `yaml:"dns" doc:"DNS server (host or host:port) to resolve names with, when there is no zone."`
	Nodes      string     `yaml:"nodes" doc:"Directory of LB node profiles, one file per node (default nodes)."`
	Monitoring Monitoring `yaml:"monitoring" doc:"The monitoring hosts that check the VIPs and the backends (Icinga 2)."`
}

// Monitoring names the hosts the rendered Icinga 2 checks run from.
type Monitoring struct {
	Hosts []Prefix `yaml:"hosts" doc:"Addresses or prefixes of the monitoring hosts; the backend firewall admits them to the ports Icinga 2 checks there. At least /8 (IPv4) or /16 (IPv6)."`
}

// NodeProfile is one file in the nodes directory: one LB node.
type NodeProfile struct {
	// Source is the file's path in the tree.
	Source string `yaml:"-"`

	Hostname        string   `yaml:"hostname" doc:"Host name of the node (default: the file name without .yaml)."`
	RouterID        string   `yaml:"router_id" required:"true" doc:"BGP router id (an IPv4 address)."`
	ASN             uint32   `yaml:"asn" required:"true" min:"1" max:"4294967295" doc:"The node's autonomous system number."`
	RouteReflectors []Peer   `yaml:"route_reflectors" doc:"BGP route reflectors the node peers with."`
	BFD             *bool    `yaml:"bfd" doc:"Run BFD on the BGP sessions (default false)."`
	VIPInterface    string   `yaml:"vip_interface" doc:"Interface carrying the VIP addresses (default lo)."`
	Addresses       []string `yaml:"addresses" doc:"The node's own addresses."`

	src *node
}

// Peer is a BGP neighbour.
type Peer struct {
	Name    string `yaml:"name" required:"true" doc:"Name of the peer."`
	Address string `yaml:"address" required:"true" doc:"Address of the peer."`
	ASN     uint32 `yaml:"asn" required:"true" min:"1" max:"4294967295" doc:"AS number of the peer."`
}

// DefaultsFile is a defaults.yaml file: defaults, locks and policy for the
// directory it is in and everything below.
type DefaultsFile struct {
	Defaults Service  `yaml:"defaults" doc:"A partial service merged under every service below: maps merge deeply, scalars and lists replace."`
	Lock     []string `yaml:"lock" doc:"Dotted field paths (e.g. tls.min_version) that files below may not set."`
	Policy   Policy   `yaml:"policy" doc:"Limits for the services below; nested policies narrow."`
}

// Policy limits what services in a subtree may use.
type Policy struct {
	VIPPrefixes   []Prefix `yaml:"vip_prefixes" doc:"VIP addresses must lie in one of these prefixes."`
	BackendGroups []string `yaml:"backend_groups" doc:"Backend inventory groups allowed (shell globs such as typo3_*)."`
}
