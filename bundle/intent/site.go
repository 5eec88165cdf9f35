package intent

// SiteFile is site.yaml at the root of an intents tree. Paths are relative
// to the tree root.
type SiteFile struct {
	Site       string     `yaml:"site" required:"true" grammar:"name" example:"campus" doc:"Name of the site."`
	Inventory  string     `yaml:"inventory" doc:"Ansible YAML inventory with the backend groups and hosts."`
	Zone       string     `yaml:"zone" doc:"Zone file (RFC 1035 master format) answering all DNS lookups, for hermetic builds."`
	DNS        string     `yaml:"dns" example:"192.0.2.53:53" doc:"DNS server (host or host:port) to resolve names with, when there is no zone."`
	Nodes      string     `yaml:"nodes" doc:"Directory of LB node profiles, one file per node (default nodes)."`
	Monitoring Monitoring `yaml:"monitoring" doc:"The monitoring hosts that check the VIPs and the backends (Icinga 2)."`
	BGP        SiteBGP    `yaml:"bgp" doc:"BGP attributes of every route of every node of the site."`
}

// SiteBGP are the site-wide BGP attributes: merged into every node's.
type SiteBGP struct {
	Communities      []Community      `yaml:"communities" doc:"Standard BGP communities (ASN:VALUE) added to every route of every node."`
	LargeCommunities []LargeCommunity `yaml:"large_communities" doc:"BGP large communities (ASN:VALUE:VALUE) added to every route of every node."`
}

// Monitoring names the hosts the rendered Icinga 2 checks run from.
type Monitoring struct {
	Hosts []Prefix `yaml:"hosts" grammar:"monitoring" unique:"true" doc:"Addresses or prefixes of the monitoring hosts; the backend firewall admits them to the ports Icinga 2 checks there. At least /8 (IPv4) or /16 (IPv6)."`
}

// NodeProfile is one file in the nodes directory: one LB node.
type NodeProfile struct {
	// Source is the file's path in the tree.
	Source string `yaml:"-"`

	Hostname        string   `yaml:"hostname" grammar:"hostname" doc:"Host name of the node (default: the file name without .yaml)."`
	RouterID        string   `yaml:"router_id" required:"true" grammar:"ipv4" example:"198.51.100.1" doc:"BGP router id (an IPv4 address)."`
	ASN             uint32   `yaml:"asn" required:"true" min:"1" max:"4294967295" doc:"The node's autonomous system number."`
	RouteReflectors []Peer   `yaml:"route_reflectors" doc:"BGP route reflectors the node peers with."`
	BFD             *bool    `yaml:"bfd" doc:"Run BFD on the BGP sessions (default false)."`
	VIPInterface    string   `yaml:"vip_interface" grammar:"interface" doc:"Interface carrying the VIP addresses (default lo)."`
	Addresses       []string `yaml:"addresses" grammar:"ip" doc:"The node's own addresses."`
	BGP             NodeBGP  `yaml:"bgp" doc:"BGP attributes of the node's routes and graceful restart."`

	src *node
}

// Peer is a BGP neighbour.
type Peer struct {
	Name    string `yaml:"name" required:"true" grammar:"name" doc:"Name of the peer."`
	Address string `yaml:"address" required:"true" grammar:"ip" doc:"Address of the peer."`
	ASN     uint32 `yaml:"asn" required:"true" min:"1" max:"4294967295" doc:"AS number of the peer."`

	PasswordFile  string  `yaml:"password_file" doc:"File on the node holding the session's TCP MD5 password as one BIRD statement, password \"SECRET\"; (mode 0640, owner root:bird). BIRD includes it: the secret is never in a bundle."`
	Multihop      int     `yaml:"multihop" min:"1" max:"255" doc:"The peer is not directly connected: TTL of the session."`
	SourceAddress string  `yaml:"source_address" doc:"Local address of the session (default: the node's first address of the peer's family)."`
	BFD           PeerBFD `yaml:"bfd" doc:"BFD timers of this session (needs bfd: true on the node)."`
}

// PeerBFD are one session's BFD timers.
type PeerBFD struct {
	Interval   Duration `yaml:"interval" doc:"BFD transmit and receive interval (10ms..60s; default: the node's, 100ms)."`
	Multiplier int      `yaml:"multiplier" min:"1" max:"255" doc:"Missed packets before the session is down (default 3)."`
}

// NodeBGP are a node's route attributes and graceful restart.
type NodeBGP struct {
	GracefulRestart  GracefulRestart  `yaml:"graceful_restart" doc:"BGP graceful restart (RFC 4724): peers keep the node's routes while its BIRD restarts."`
	Communities      []Community      `yaml:"communities" doc:"Standard BGP communities (ASN:VALUE) added to every route of the node (with the site's)."`
	LargeCommunities []LargeCommunity `yaml:"large_communities" doc:"BGP large communities (ASN:VALUE:VALUE) added to every route of the node (with the site's)."`
	MED              *uint32          `yaml:"med" min:"0" max:"4294967295" doc:"MULTI_EXIT_DISC of every route (default: none)."`
	LocalPref        *uint32          `yaml:"local_pref" min:"0" max:"4294967295" doc:"LOCAL_PREF of every route on iBGP sessions (default 100)."`
	Prepend          int              `yaml:"prepend" min:"0" max:"8" doc:"Times the node's ASN is prepended to the AS path on eBGP sessions (default 0)."`
	Backup           BackupBGP        `yaml:"backup" doc:"How the node announces a VIP whose primary is another node."`
}

// GracefulRestart is BGP graceful restart.
type GracefulRestart struct {
	Enabled     *bool `yaml:"enabled" doc:"Enable graceful restart (default false)."`
	RestartTime int   `yaml:"restart_time" min:"1" max:"4095" doc:"Seconds the peers keep the routes (default BIRD's, 120)."`
}

// shorthand: "graceful_restart: on" means {enabled: true}.
func (GracefulRestart) shorthand(n *node) *node { return boolShorthand(n, "enabled") }

func (GracefulRestart) shorthandSchema() map[string]any {
	return boolSchema("Short for {enabled: BOOL}.")
}

// BackupBGP are the attributes of a backup route.
type BackupBGP struct {
	LocalPref *uint32 `yaml:"local_pref" min:"0" max:"4294967295" doc:"LOCAL_PREF of a backup route on iBGP sessions (default 50, below the node's)."`
	Prepend   *int    `yaml:"prepend" min:"0" max:"8" doc:"Times the node's ASN is prepended to a backup route on eBGP sessions, on top of prepend (default 3)."`
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
	Communities   []string `yaml:"communities" doc:"BGP communities and large communities the services below may set (shell globs on their text, such as 65000:2*)."`
}
