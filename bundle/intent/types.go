package intent

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
)

// Service is one service file as its owner writes it, after the defaults
// of every enclosing directory are merged in. Zero values mean "not set":
// inference fills them in. The struct tags drive decoding and the JSON
// Schema: yaml is the key, doc the description, enum the allowed values,
// min and max the range of integers.
type Service struct {
	// Name is the file's path in the tree without extension.
	Name string `yaml:"-"`
	// Source is the file's path in the tree.
	Source string `yaml:"-"`

	FQDN        string      `yaml:"fqdn" grammar:"fqdn" example:"www.campus.example" doc:"Host name of the service; its A/AAAA records are the VIP addresses." required:"true"`
	Aliases     []string    `yaml:"aliases" grammar:"fqdn" unique:"true" doc:"Further host names routed to this service (Host header / SNI)."`
	Mode        string      `yaml:"mode" enum:"http,tcp" doc:"Proxy mode; inferred from backend.software (postfix, dovecot and slapd mean tcp, everything else http)."`
	Listeners   []Listener  `yaml:"listeners" example:"[80, 443]" doc:"Ports the service accepts connections on; inferred from mode, TLS and software when omitted."`
	TLS         TLS         `yaml:"tls" example:"true" doc:"TLS termination on the load balancer."`
	Backend     Backend     `yaml:"backend" example:"typo3_web" doc:"The backend pool." required:"true"`
	Redirects   []Redirect  `yaml:"redirects" doc:"HTTP redirects answered by the load balancer (mode http)."`
	Allow       []Prefix    `yaml:"allow" example:"[\"192.0.2.0/24\", \"2001:db8::/32\"]" doc:"Client source prefixes admitted; empty admits everyone."`
	Transparent Transparent `yaml:"transparent" doc:"Backends see the client's address (TPROXY on the node)."`
	Timeouts    Timeouts    `yaml:"timeouts" doc:"Timeouts; inferred from mode when omitted."`
	Owner       string      `yaml:"owner" grammar:"name" example:"web-team" doc:"Owning team, for monitoring."`
	Contacts    []string    `yaml:"contacts" grammar:"email" doc:"E-mail addresses notified by monitoring."`
	BGP         ServiceBGP  `yaml:"bgp" doc:"BGP attributes of the VIP's routes: communities, primary node."`

	// file is the service file as shown to the operator.
	file string
	// src is the merged node tree the service was decoded from, for
	// positions of errors found after decoding.
	src *node
	// chain is the defaults that apply, root first.
	chain []*Defaults
	// broken is set when the service's file or its defaults have errors;
	// resolving a partially loaded tree skips it.
	broken bool
}

// Listener is one port of a service.
type Listener struct {
	Port        int   `yaml:"port" min:"1" max:"65535" doc:"TCP port on the VIP." required:"true"`
	IPv4        *bool `yaml:"ipv4" doc:"Listen on the IPv4 addresses; follows the FQDN's A records unless set to false."`
	IPv6        *bool `yaml:"ipv6" doc:"Listen on the IPv6 addresses; follows the FQDN's AAAA records unless set to false."`
	BackendPort int   `yaml:"backend_port" min:"1" max:"65535" doc:"Port on the backend servers for this listener."`
	TLS         *bool `yaml:"tls" doc:"The load balancer terminates TLS on this port (default: port 443 when tls is enabled in mode http)."`
}

// shorthand: "- 443" means {port: 443}.
func (Listener) shorthand(n *node) *node {
	if n.kind == kindScalar && n.tag == tagInt {
		return mapOf(n.pos, "port", n)
	}
	return nil
}

func (Listener) shorthandSchema() map[string]any {
	return map[string]any{"type": "integer", "minimum": 1, "maximum": 65535, "description": "Short for {port: N}."}
}

// TLS is TLS termination on the load balancer.
type TLS struct {
	Enabled     *bool  `yaml:"enabled" doc:"Terminate TLS on the load balancer."`
	Certificate string `yaml:"certificate" grammar:"name" doc:"Certificate name on the node (/etc/lbctl/certs/NAME.pem); default: the FQDN."`
	Redirect    *bool  `yaml:"redirect" doc:"Plain HTTP listeners answer with a redirect to https (default true); false passes them to the backend."`
	MinVersion  string `yaml:"min_version" enum:"1.2,1.3" doc:"Minimum TLS version (default 1.2)."`
	Ciphers     string `yaml:"ciphers" enum:"modern,intermediate,old" doc:"Mozilla cipher profile (default intermediate)."`
	HSTS        int    `yaml:"hsts" min:"0" max:"63072000" doc:"Strict-Transport-Security max-age in seconds; 0 sends no header."`
}

// shorthand: "tls: true" / "tls: on" means {enabled: true}.
func (TLS) shorthand(n *node) *node { return boolShorthand(n, "enabled") }

func (TLS) shorthandSchema() map[string]any { return boolSchema("Short for {enabled: BOOL}.") }

// Backend is the backend pool of a service.
type Backend struct {
	Group      string   `yaml:"group" grammar:"name" example:"typo3_web" doc:"Inventory group whose hosts are the servers."`
	Hosts      []string `yaml:"hosts" doc:"Servers by inventory host name, DNS name or address (instead of group)."`
	Port       int      `yaml:"port" min:"1" max:"65535" doc:"Port on the servers; inferred from software."`
	Software   string   `yaml:"software" enum:"apache2,nginx,tomcat,iis,postfix,dovecot,slapd,generic" doc:"Server software; sets the default mode, port and health check (default generic)."`
	Check      Check    `yaml:"check" doc:"Health check; inferred from software."`
	Balance    string   `yaml:"balance" enum:"roundrobin,leastconn,source" doc:"Balance algorithm (default roundrobin for http, leastconn for tcp)."`
	Proxy      string   `yaml:"proxy" enum:"none,v1,v2" doc:"PROXY protocol towards the servers (default none)."`
	ForwardFor *bool    `yaml:"forward_for" doc:"Add X-Forwarded-For (mode http; default true unless proxy is set)."`
	TLS        *bool    `yaml:"tls" doc:"Speak TLS to the servers."`
	MinUp      int      `yaml:"min_up" min:"1" max:"1000" doc:"Servers that must be up for the service to be healthy (default 1)."`

	// Servers adjusts single servers (bundle/intent/servers.go).
	Servers []ServerSetting `yaml:"servers" doc:"Per-server settings: weight, planned maintenance (disabled)."`
}

// ServerSetting adjusts one server of a backend.
type ServerSetting struct {
	Name     string `yaml:"name" required:"true" doc:"The server: its inventory host name, or that name's first label."`
	Weight   *int   `yaml:"weight" min:"0" max:"256" doc:"HAProxy weight (default 1); 0 sends it no new traffic."`
	Disabled bool   `yaml:"disabled" doc:"Keep the server out of service (planned long maintenance); lbctl server enable does not override it."`
}

// shorthand: "backend: typo3_web" means {group: typo3_web}.
func (Backend) shorthand(n *node) *node {
	if n.kind == kindScalar && n.tag == tagStr {
		return mapOf(n.pos, "group", n)
	}
	return nil
}

func (Backend) shorthandSchema() map[string]any {
	s := grammarRef("name")
	s["type"], s["description"] = "string", "Short for {group: NAME}."
	return s
}

// Check is a backend health check.
type Check struct {
	Type     string   `yaml:"type" enum:"http,tcp,smtp,ldap,none" doc:"Check type; inferred from software."`
	Method   string   `yaml:"method" enum:"GET,HEAD,OPTIONS" doc:"HTTP method (default GET)."`
	Path     string   `yaml:"path" grammar:"checkpath" example:"/healthz" doc:"HTTP path (default /)."`
	Host     string   `yaml:"host" grammar:"fqdn" doc:"HTTP Host header (default: the FQDN)."`
	Expect   string   `yaml:"expect" grammar:"status" example:"200" doc:"Expected HTTP status, e.g. 200 or 2xx (default: any 2xx or 3xx)."`
	Interval Duration `yaml:"interval" doc:"Check interval (default 2s)."`
	Rise     int      `yaml:"rise" min:"1" max:"100" doc:"Successful checks to mark a server up (default 2)."`
	Fall     int      `yaml:"fall" min:"1" max:"100" doc:"Failed checks to mark a server down (default 3)."`
}

// shorthand: "check: tcp" means {type: tcp}.
func (Check) shorthand(n *node) *node {
	if n.kind == kindScalar && n.tag == tagStr {
		return mapOf(n.pos, "type", n)
	}
	return nil
}

func (Check) shorthandSchema() map[string]any {
	return map[string]any{"type": "string", "enum": []string{"http", "tcp", "smtp", "ldap", "none"}, "description": "Short for {type: TYPE}."}
}

// Redirect is an HTTP redirect answered by the load balancer.
type Redirect struct {
	From string `yaml:"from" grammar:"urlpath" example:"/old" doc:"Path prefix, starting with /." required:"true"`
	To   string `yaml:"to" grammar:"redirect" example:"https://new.campus.example/" doc:"Target URL or path." required:"true"`
	Code int    `yaml:"code" min:"301" max:"308" doc:"301, 302, 303, 307 or 308 (default 301)."`
}

// Transparent is transparent proxying: backends see the client's address.
type Transparent struct {
	Enabled   *bool    `yaml:"enabled" doc:"Backends see the client's address (TPROXY on the node)."`
	Intercept []Prefix `yaml:"intercept" doc:"Destination prefixes whose traffic to the listener ports is intercepted (nftables tproxy)."`
}

// shorthand: "transparent: true" means {enabled: true}.
func (Transparent) shorthand(n *node) *node { return boolShorthand(n, "enabled") }

func (Transparent) shorthandSchema() map[string]any { return boolSchema("Short for {enabled: BOOL}.") }

// Timeouts of a service.
type Timeouts struct {
	Connect Duration `yaml:"connect" doc:"Connecting to a server (default 5s)."`
	Client  Duration `yaml:"client" doc:"Client inactivity (default 30s for http, 1h for tcp)."`
	Server  Duration `yaml:"server" doc:"Server inactivity (default 30s for http, 1h for tcp)."`
	Tunnel  Duration `yaml:"tunnel" doc:"Websockets and other tunnels in mode http (default 1h)."`
}

// Duration is a duration written like "5s" or "1m30s" (Go syntax),
// positive, with millisecond resolution.
type Duration time.Duration

func (d *Duration) decodeScalar(n *node) error {
	if n.tag != tagStr {
		return fmt.Errorf("want a duration like \"5s\", got %s", n.describe())
	}
	v, err := time.ParseDuration(n.value)
	if err != nil {
		return fmt.Errorf("want a duration like \"5s\", got %q", n.value)
	}
	if v < time.Millisecond || v > 24*time.Hour {
		return fmt.Errorf("duration %s out of range 1ms..24h", n.value)
	}
	*d = Duration(v)
	return nil
}

// MS is the duration in milliseconds.
func (d Duration) MS() int { return int(time.Duration(d) / time.Millisecond) }

// Prefix is an IP prefix; a bare address means a host prefix. It is
// stored masked (canonical).
type Prefix struct{ netip.Prefix }

func (p *Prefix) decodeScalar(n *node) error {
	if n.tag != tagStr {
		return fmt.Errorf("want an IP prefix like \"192.0.2.0/24\", got %s", n.describe())
	}
	v, err := parsePrefix(n.value)
	if err != nil {
		return err
	}
	p.Prefix = v
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		v, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad IP prefix %q", s)
		}
		return v.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad IP prefix %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// mapOf builds a one-key map node at pos.
func mapOf(pos Pos, key string, val *node) *node {
	k := &node{kind: kindScalar, tag: tagStr, value: key, pos: pos}
	return &node{kind: kindMap, pos: pos, keys: []*node{k}, vals: []*node{val}}
}

// boolShorthand turns a boolean scalar (true/false/on/off/yes/no) into
// {key: BOOL}.
func boolShorthand(n *node, key string) *node {
	if n.kind != kindScalar {
		return nil
	}
	if _, ok := parseBool(n); !ok {
		return nil
	}
	return mapOf(n.pos, key, n)
}

// parseBool accepts YAML booleans and the words an operator writes for them.
func parseBool(n *node) (bool, bool) {
	if n.kind != kindScalar || (n.tag != tagBool && n.tag != tagStr) {
		return false, false
	}
	switch strings.ToLower(n.value) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

func parseInt(n *node) (int64, bool) {
	if n.kind != kindScalar || n.tag != tagInt {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.value, "_", ""), 0, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// ServiceBGP are the BGP attributes a service asks for its VIP's routes.
type ServiceBGP struct {
	Communities      []Community      `yaml:"communities" doc:"Standard BGP communities (ASN:VALUE, each 0..65535) added to the VIP's routes; the VIP carries those of all its services."`
	LargeCommunities []LargeCommunity `yaml:"large_communities" doc:"BGP large communities (ASN:VALUE:VALUE, each 0..4294967295) added to the VIP's routes."`
	Primary          string           `yaml:"primary" doc:"Host name of the LB node that serves the VIP while it is healthy there; the other nodes announce it as backup (lower local preference, AS-path prepend on eBGP). Services sharing a VIP must agree."`
}

// Community is a standard BGP community, ASN:VALUE.
type Community struct{ model.Community }

func (c *Community) decodeScalar(n *node) error {
	v, err := model.ParseCommunity(n.value)
	if err != nil {
		return err
	}
	if v == model.GracefulShutdown {
		return fmt.Errorf("community %s is reserved for graceful shutdown (lbctl drain --all)", n.value)
	}
	c.Community = v
	return nil
}

// LargeCommunity is a BGP large community, ASN:VALUE:VALUE.
type LargeCommunity struct{ model.LargeCommunity }

func (c *LargeCommunity) decodeScalar(n *node) error {
	v, err := model.ParseLargeCommunity(n.value)
	if err != nil {
		return err
	}
	c.LargeCommunity = v
	return nil
}

// communities returns the decoded communities, sorted and distinct.
func communities(cs []Community) []model.Community {
	var out []model.Community
	for _, c := range cs {
		out = append(out, c.Community)
	}
	return model.SortCommunities(out)
}

// largeCommunities returns the decoded large communities, sorted and
// distinct.
func largeCommunities(cs []LargeCommunity) []model.LargeCommunity {
	var out []model.LargeCommunity
	for _, c := range cs {
		out = append(out, c.LargeCommunity)
	}
	return model.SortLargeCommunities(out)
}
