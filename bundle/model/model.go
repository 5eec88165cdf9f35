// Package model holds the resolved model: plain Go types with a stable,
// deterministic JSON encoding that form the contract between the build side
// (intents, inventory, DNS, renderers, bundles) and the node side (plan,
// apply, health).
//
// Everything in a resolved model is explicit: inference has already happened,
// names are resolved to addresses, and every list is sorted. The package has
// no dependencies on the host: it never reads files, the clock or the network.
package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
)

// FormatVersion is the version of the resolved model encoding. A node refuses
// a bundle whose resolved model has a different format (ErrFormatVersion).
//
// Version 2 dropped tls.redirect_http (a listener's action says whether
// port 80 redirects); version 1 bundles are refused.
const FormatVersion = 2

// ErrFormatVersion: the resolved model has another format version than
// this lbctl reads.
var ErrFormatVersion = errors.New("unsupported resolved model format version")

// Site is the whole resolved site.
type Site struct {
	FormatVersion int `json:"format_version"`
	// Name of the site (from the site file).
	Name string `json:"name"`
	// Services sorted by Name.
	Services []Service `json:"services"`
	// VIPs sorted by Name. Each VIP is one HAProxy process on every node.
	VIPs []VIP `json:"vips"`
	// Nodes are the LB node profiles, sorted by Hostname.
	Nodes []Node `json:"nodes"`
	// Monitoring are the prefixes of the monitoring hosts (canonical,
	// sorted IPv4 first): the backend firewall admits them to the ports
	// Icinga 2 checks.
	Monitoring []netip.Prefix `json:"monitoring,omitempty"`
}

// Modes of a service.
const (
	ModeHTTP = "http"
	ModeTCP  = "tcp"
)

// Listener actions.
const (
	// ActionServe proxies the connection to the service's backend.
	ActionServe = "serve"
	// ActionRedirectHTTPS answers plain HTTP with a redirect to https://.
	ActionRedirectHTTPS = "redirect-https"
)

// Service is one resolved service (one service file of the intents tree).
type Service struct {
	// Name is the service's path in the tree without extension,
	// e.g. "web/typo3/physik". Unique.
	Name string `json:"name"`
	// Source is the service file, relative to the tree root.
	Source string `json:"source"`
	FQDN   string `json:"fqdn"`
	// Aliases are further host names routed to this service (sorted).
	Aliases []string `json:"aliases,omitempty"`
	Mode    string   `json:"mode"`
	// VIP is the name of the VIP this service is bound to.
	VIP string `json:"vip"`
	// Addresses are the VIP addresses (from the FQDN's A/AAAA records), sorted
	// IPv4 first.
	Addresses []netip.Addr `json:"addresses"`
	// Listeners sorted by Port.
	Listeners []Listener `json:"listeners"`
	// TLS termination on the LB; nil when the LB does not terminate TLS.
	TLS *TLS `json:"tls,omitempty"`
	// BGP are the attributes the service asks for its VIP's routes.
	BGP     RouteAttrs `json:"bgp,omitzero"`
	Backend Backend    `json:"backend"`
	// Redirects sorted by From.
	Redirects []Redirect `json:"redirects,omitempty"`
	// AllowedSources are the client prefixes admitted (canonical, sorted);
	// empty means everyone.
	AllowedSources []netip.Prefix `json:"allowed_sources,omitempty"`
	// Transparent means backends see the client's address (TPROXY on the node).
	Transparent bool `json:"transparent,omitempty"`
	// InterceptPrefixes, for transparent services, are destination prefixes
	// whose traffic is intercepted with nftables "tproxy to" (sorted).
	InterceptPrefixes []netip.Prefix `json:"intercept_prefixes,omitempty"`
	Timeouts          Timeouts       `json:"timeouts"`
	Owner             string         `json:"owner,omitempty"`
	// Contacts are e-mail addresses for monitoring notifications (sorted).
	Contacts []string `json:"contacts,omitempty"`
}

// Listener is one port a service accepts connections on, on all its VIP
// addresses.
type Listener struct {
	Port int `json:"port"`
	// IPv4 and IPv6 say on which address families the listener binds;
	// both follow the VIP's addresses unless the intents restrict them.
	IPv4 bool `json:"ipv4"`
	IPv6 bool `json:"ipv6"`
	// TLS means the LB terminates TLS on this port.
	TLS bool `json:"tls"`
	// Action is ActionServe or ActionRedirectHTTPS.
	Action string `json:"action"`
	// BackendPort is the port on the backend servers for this listener
	// (zero for redirect listeners).
	BackendPort int `json:"backend_port,omitempty"`
}

// TLS is the LB's TLS termination policy for a service.
type TLS struct {
	// Certificate names a certificate on the node:
	// /etc/lbctl/certs/<Certificate>.pem (certificate chain and key).
	Certificate string `json:"certificate"`
	// MinVersion is "1.2" or "1.3".
	MinVersion string `json:"min_version"`
	// CipherProfile is "modern", "intermediate" or "old" (Mozilla's profiles).
	CipherProfile string `json:"cipher_profile"`
	// HSTS max-age in seconds; zero means no header.
	HSTSMaxAge int `json:"hsts_max_age,omitempty"`
}

// Proxy protocol settings towards backends.
const (
	ProxyNone = "none"
	ProxyV1   = "v1"
	ProxyV2   = "v2"
)

// Backend is a resolved backend pool.
type Backend struct {
	// Group is the inventory group the servers came from, if any.
	Group string `json:"group,omitempty"`
	// Servers sorted by Name.
	Servers []Server `json:"servers"`
	// Port is the default backend port (listeners may override per port).
	Port int `json:"port"`
	// Software is the server software the defaults were inferred from
	// (apache2, nginx, tomcat, postfix, dovecot, slapd, generic).
	Software string `json:"software"`
	// Balance is the HAProxy balance algorithm (roundrobin, leastconn, source).
	Balance string `json:"balance"`
	Check   Check  `json:"check"`
	// Proxy is ProxyNone, ProxyV1 or ProxyV2.
	Proxy string `json:"proxy"`
	// ForwardFor adds X-Forwarded-For (http mode only).
	ForwardFor bool `json:"forward_for"`
	// TLS means the LB speaks TLS to the backend servers.
	TLS bool `json:"tls,omitempty"`
	// MinUp is how many servers must be up for the service to count as
	// healthy (and its VIP to be announced).
	MinUp int `json:"min_up"`
}

// Server is one backend host.
type Server struct {
	// Name is the inventory host name (or the address for literal hosts).
	Name string `json:"name"`
	// Address is the resolved address.
	Address netip.Addr `json:"address"`
	// Weight is HAProxy's weight; nil means HAProxy's default (1).
	Weight *int `json:"weight,omitempty"`
	// Disabled keeps the server out of service (planned maintenance).
	Disabled bool `json:"disabled,omitempty"`
}

// Health check types.
const (
	CheckHTTP = "http"
	CheckTCP  = "tcp"
	CheckSMTP = "smtp"
	CheckLDAP = "ldap"
	CheckNone = "none"
)

// Check is a backend health check.
type Check struct {
	Type string `json:"type"`
	// Method, Path, Host and ExpectStatus apply to http checks.
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	Host   string `json:"host,omitempty"`
	// ExpectStatus is a HAProxy status expression such as "200" or "2xx";
	// empty accepts 2xx and 3xx.
	ExpectStatus string `json:"expect_status,omitempty"`
	// IntervalMS is the check interval in milliseconds.
	IntervalMS int `json:"interval_ms"`
	Rise       int `json:"rise"`
	Fall       int `json:"fall"`
}

// Redirect is an HTTP redirect answered by the LB.
type Redirect struct {
	// From is a path prefix (e.g. "/old").
	From string `json:"from"`
	// To is the target URL or path.
	To string `json:"to"`
	// Code is 301, 302, 303, 307 or 308.
	Code int `json:"code"`
}

// Timeouts of a service in milliseconds.
type Timeouts struct {
	ConnectMS int `json:"connect_ms"`
	ClientMS  int `json:"client_ms"`
	ServerMS  int `json:"server_ms"`
	// TunnelMS applies to websockets and long-lived tcp sessions.
	TunnelMS int `json:"tunnel_ms,omitempty"`
}

// VIP is one distinct set of VIP addresses with every service bound to it: one
// HAProxy process, one systemd unit instance, one set of announced routes.
type VIP struct {
	// Name is stable and safe as a systemd instance name and a directory
	// name: derived from the VIP's key address (its first IPv4 address, else
	// its first IPv6 address) with ':' replaced by '-'.
	Name string `json:"name"`
	// Addresses sorted IPv4 first, then by value.
	Addresses []netip.Addr `json:"addresses"`
	// Services bound to this VIP, sorted names.
	Services []string `json:"services"`
	// Ports is the union of the services' listener ports (sorted).
	Ports []Port `json:"ports"`
	// Transparent is true if any service on the VIP is transparent.
	Transparent bool `json:"transparent,omitempty"`
	// Threads is how many threads the VIP's HAProxy runs (inference rule
	// I27); a node's lbctl.yaml may override it for every VIP there.
	Threads int `json:"threads,omitempty"`
	// BGP are the attributes of the VIP's routes: the union of its
	// services' communities and their agreed primary node.
	BGP RouteAttrs `json:"bgp,omitzero"`
}

// Port is one listening port of a VIP.
type Port struct {
	Port int `json:"port"`
	// Mode is the mode of the services on this port (they agree).
	Mode string `json:"mode"`
	// TLS is whether the LB terminates TLS on this port (services agree).
	TLS bool `json:"tls"`
	// Services listening on this port, sorted.
	Services []string `json:"services"`
}

// Node is the profile of one LB node: one bundle serves the whole fleet and
// each node picks its own profile by host name.
type Node struct {
	Hostname string `json:"hostname"`
	// RouterID is the BGP router id (an IPv4 address).
	RouterID netip.Addr `json:"router_id"`
	// ASN is the node's autonomous system number.
	ASN uint32 `json:"asn"`
	// RouteReflectors sorted by Name.
	RouteReflectors []Peer `json:"route_reflectors"`
	BFD             bool   `json:"bfd"`
	// VIPInterface carries the VIP addresses ("lo" by default).
	VIPInterface string `json:"vip_interface"`
	// Addresses are the node's own addresses (sorted), used for BGP sessions
	// and in the backends' firewall snippets.
	Addresses []netip.Addr `json:"addresses"`
	// Source is the node profile file, relative to the tree root.
	Source string `json:"source"`
	// BGP are the node's route attributes and session options.
	BGP NodeBGP `json:"bgp,omitzero"`
}

// Peer is a BGP neighbour of an LB node.
type Peer struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
	// PasswordFile names a file on the node that BIRD includes inside
	// the session: one statement, password "SECRET"; (the secret is never
	// in a bundle).
	PasswordFile string `json:"password_file,omitempty"`
	// Multihop is the TTL of a multihop session; 0 means a directly
	// connected peer.
	Multihop int `json:"multihop,omitempty"`
	// SourceAddress is the session's local address; unset, the node's
	// first address of the peer's family.
	SourceAddress netip.Addr `json:"source_address,omitzero"`
	// BFDIntervalMS and BFDMultiplier are the session's BFD timers (with
	// the node's bfd on); 0 keeps the node's protocol bfd timers.
	BFDIntervalMS int `json:"bfd_interval_ms,omitempty"`
	BFDMultiplier int `json:"bfd_multiplier,omitempty"`
}

// Encode returns the canonical JSON encoding of the site: indented, with a
// trailing newline. Equal sites give equal bytes.
func Encode(s *Site) ([]byte, error) {
	// The lists are encoded apart (see encode.go) and spliced into the
	// rest of the site, where they are null.
	rest := *s
	rest.Services, rest.VIPs, rest.Nodes = nil, nil, nil
	var buf bytes.Buffer
	if err := newEncoder(&buf, "").Encode(&rest); err != nil {
		return nil, fmt.Errorf("encode resolved model: %w", err)
	}
	// The services, by far the largest, are spliced last: copied once.
	b := buf.Bytes()
	var err error
	if b, err = spliceList(b, "nodes", s.Nodes); err != nil {
		return nil, fmt.Errorf("encode resolved model: %w", err)
	}
	if b, err = spliceList(b, "vips", s.VIPs); err != nil {
		return nil, fmt.Errorf("encode resolved model: %w", err)
	}
	if b, err = spliceList(b, "services", s.Services); err != nil {
		return nil, fmt.Errorf("encode resolved model: %w", err)
	}
	return b, nil
}

// Decode parses a resolved model, refusing unknown fields, other format
// versions and any string that breaks its grammar (Site.Validate): a node
// decodes a bundle with it before it renders or writes anything.
func Decode(b []byte) (*Site, error) {
	s, err := DecodeUnchecked(b)
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("resolved model: %w", err)
	}
	return s, nil
}

// DecodeUnchecked is Decode without Site.Validate, for tools that show a
// bundle a node would refuse (lbctl inspect). Nothing may render or write
// what it returns.
func DecodeUnchecked(b []byte) (*Site, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Site
	if err := dec.Decode(&s); err != nil {
		// Another format fails on its fields: say why it does.
		var v struct {
			FormatVersion int `json:"format_version"`
		}
		if json.Unmarshal(b, &v) == nil && v.FormatVersion != FormatVersion {
			return nil, formatError(v.FormatVersion)
		}
		return nil, fmt.Errorf("decode resolved model: %w", err)
	}
	if s.FormatVersion != FormatVersion {
		return nil, formatError(s.FormatVersion)
	}
	return &s, nil
}

// formatError is the error of a resolved model of format version v.
func formatError(v int) error {
	return fmt.Errorf("decode resolved model: format version %d, want %d (build the bundle with an lbctl of the nodes' version): %w",
		v, FormatVersion, ErrFormatVersion)
}

// Service returns the service with the given name, or nil.
func (s *Site) Service(name string) *Service {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}

// VIP returns the VIP with the given name, or nil.
func (s *Site) VIP(name string) *VIP {
	for i := range s.VIPs {
		if s.VIPs[i].Name == name {
			return &s.VIPs[i]
		}
	}
	return nil
}

// Node returns the node profile with the given host name, or nil.
func (s *Site) Node(hostname string) *Node {
	for i := range s.Nodes {
		if s.Nodes[i].Hostname == hostname {
			return &s.Nodes[i]
		}
	}
	return nil
}
