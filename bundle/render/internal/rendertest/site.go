package rendertest

import (
	"net/netip"

	"github.com/lbctl/lbctl/bundle/model"
)

// Addrs parses literal addresses.
func Addrs(as ...string) []netip.Addr {
	out := make([]netip.Addr, len(as))
	for i, a := range as {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

// Site returns a resolved model that exercises every renderer feature:
//
//   - VIP 192.0.2.10 (dual stack): three http services sharing ports 80 and
//     443 (Host/SNI routing, two certificates and two TLS policies through a
//     crt-list, an HTTP to HTTPS redirect for one service, path redirects,
//     HSTS, X-Forwarded-For, per-service client ACLs, TLS to the servers);
//   - VIP 192.0.2.20 (dual stack): SMTP with PROXY v2 and smtpchk, IMAPS
//     with PROXY v1;
//   - VIP 192.0.2.30: LDAP passed through and LDAPS terminated (tcp mode
//     TLS), ldap-check, a dual-stack server pool;
//   - VIP 192.0.2.40: a transparent tcp service with an intercept prefix and
//     a client ACL;
//   - VIP 2001-db8--60: IPv6 only, no health check, an IPv6 server.
//
// Nodes: lb1 (iBGP to two route reflectors, one reached over IPv6, BFD) and
// lb2 (eBGP, no BFD). Every call returns a fresh copy.
func Site() *model.Site {
	// A VIP and its services share one address slice.
	webAddrs := Addrs("192.0.2.10", "2001:db8::10")
	mailAddrs := Addrs("192.0.2.20", "2001:db8::20")
	return &model.Site{
		FormatVersion: model.FormatVersion,
		Name:          "lab",
		Monitoring:    []netip.Prefix{netip.MustParsePrefix("198.51.100.60/32"), netip.MustParsePrefix("2001:db8:ffff::/120")},
		Services:      append(otherServices(mailAddrs), webServices(webAddrs)...),
		VIPs:          vips(webAddrs, mailAddrs),
		Nodes:         nodes(),
	}
}

func check(typ string) model.Check {
	return model.Check{Type: typ, IntervalMS: 2000, Rise: 2, Fall: 3}
}

func httpCheck(path, host, expect string) model.Check {
	c := check(model.CheckHTTP)
	c.Method, c.Path, c.Host, c.ExpectStatus = "GET", path, host, expect
	return c
}

var (
	web  = model.Timeouts{ConnectMS: 5000, ClientMS: 30000, ServerMS: 30000}
	long = model.Timeouts{ConnectMS: 5000, ClientMS: 3600000, ServerMS: 3600000}
)

func dual(port, backend int, tls bool) model.Listener {
	return model.Listener{Port: port, IPv4: true, IPv6: true, TLS: tls, Action: model.ActionServe, BackendPort: backend}
}

func v4(port, backend int, tls bool) model.Listener {
	return model.Listener{Port: port, IPv4: true, TLS: tls, Action: model.ActionServe, BackendPort: backend}
}

// otherServices are the transparent ERP service, LDAP and mail (sorted by
// name, before the web services).
func otherServices(mailAddrs []netip.Addr) []model.Service {
	return []model.Service{
		{
			Name: "erp/app", Source: "erp/app.yaml", FQDN: "erp.example.org", Mode: model.ModeTCP,
			VIP: "192.0.2.40", Addresses: Addrs("192.0.2.40"),
			Listeners: []model.Listener{v4(3200, 3200, false), v4(3300, 3300, false)},
			Backend: model.Backend{
				Group:   "erp",
				Servers: []model.Server{{Name: "erp1", Address: netip.MustParseAddr("203.0.113.61")}, {Name: "erp2", Address: netip.MustParseAddr("203.0.113.62")}},
				Port:    3200, Software: "generic", Balance: "leastconn", Check: check(model.CheckTCP),
				Proxy: model.ProxyNone, MinUp: 1,
			},
			AllowedSources:    []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")},
			Transparent:       true,
			InterceptPrefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25")},
			Timeouts:          model.Timeouts{ConnectMS: 5000, ClientMS: 8 * 3600000, ServerMS: 8 * 3600000},
			Owner:             "erp-team",
			Contacts:          []string{"erp@example.org"},
		},
		{
			Name: "ldap/directory", Source: "ldap/directory.yaml", FQDN: "ldap.example.org", Mode: model.ModeTCP,
			VIP: "192.0.2.30", Addresses: Addrs("192.0.2.30"),
			Listeners: []model.Listener{v4(389, 389, false), v4(636, 389, true)},
			TLS:       &model.TLS{Certificate: "ldap.example.org", MinVersion: "1.2", CipherProfile: "intermediate"},
			Backend: model.Backend{
				Group:   "ldap",
				Servers: []model.Server{{Name: "ldap1", Address: netip.MustParseAddr("203.0.113.51")}, {Name: "ldap2", Address: netip.MustParseAddr("2001:db8:1::52")}},
				Port:    389, Software: "slapd", Balance: "leastconn", Check: check(model.CheckLDAP),
				Proxy: model.ProxyNone, MinUp: 1,
			},
			Timeouts: long,
			Owner:    "idm-team",
			Contacts: []string{"idm@example.org", "noc@example.org"},
		},
		{
			Name: "mail/imap", Source: "mail/imap.yaml", FQDN: "imap.example.org", Mode: model.ModeTCP,
			VIP: "192.0.2.20", Addresses: mailAddrs,
			Listeners: []model.Listener{dual(993, 993, false)},
			Backend: model.Backend{
				Group:   "mail_imap",
				Servers: []model.Server{{Name: "imap1", Address: netip.MustParseAddr("203.0.113.31")}},
				Port:    993, Software: "dovecot", Balance: "leastconn", Check: check(model.CheckTCP),
				Proxy: model.ProxyV1, MinUp: 1,
			},
			Timeouts: long,
			Owner:    "mail-team",
			Contacts: []string{"postmaster@example.org"},
		},
		{
			Name: "mail/smtp", Source: "mail/smtp.yaml", FQDN: "smtp.example.org", Aliases: []string{"mx.example.org"},
			Mode: model.ModeTCP, VIP: "192.0.2.20", Addresses: mailAddrs,
			Listeners: []model.Listener{dual(25, 25, false), dual(465, 465, false), dual(587, 587, false)},
			Backend: model.Backend{
				Group:   "mail_mx",
				Servers: []model.Server{{Name: "mx1", Address: netip.MustParseAddr("203.0.113.21")}, {Name: "mx2", Address: netip.MustParseAddr("203.0.113.22")}},
				Port:    25, Software: "postfix", Balance: "roundrobin", Check: check(model.CheckSMTP),
				Proxy: model.ProxyV2, MinUp: 1,
			},
			Timeouts: model.Timeouts{ConnectMS: 5000, ClientMS: 300000, ServerMS: 300000},
			Owner:    "mail-team",
			Contacts: []string{"postmaster@example.org"},
		},
	}
}

// webServices are the http services of VIP 192.0.2.10 and the IPv6-only one.
func webServices(webAddrs []netip.Addr) []model.Service {
	return []model.Service{
		{
			Name: "web/a", Source: "web/a.yaml", FQDN: "a.example.org", Aliases: []string{"www.a.example.org"},
			Mode: model.ModeHTTP, VIP: "192.0.2.10", Addresses: webAddrs,
			Listeners: []model.Listener{dual(80, 8080, false), dual(443, 8080, true)},
			TLS:       &model.TLS{Certificate: "a.example.org", MinVersion: "1.2", CipherProfile: "intermediate", HSTSMaxAge: 31536000},
			Backend: model.Backend{
				Group:   "web_a",
				Servers: []model.Server{{Name: "web1", Address: netip.MustParseAddr("203.0.113.11")}, {Name: "web2", Address: netip.MustParseAddr("203.0.113.12"), Weight: weight(50)}},
				Port:    8080, Software: "tomcat", Balance: "roundrobin",
				Check: httpCheck("/health", "a.example.org", "200"),
				Proxy: model.ProxyNone, ForwardFor: true, MinUp: 1,
			},
			Redirects: []model.Redirect{
				{From: "/docs/", To: "https://docs.example.org/", Code: 302},
				{From: "/old", To: "/new", Code: 301},
			},
			Timeouts: model.Timeouts{ConnectMS: 5000, ClientMS: 30000, ServerMS: 30000, TunnelMS: 3600000},
			Owner:    "web-team",
			Contacts: []string{"web@example.org"},
		},
		{
			Name: "web/b", Source: "web/b.yaml", FQDN: "b.example.org",
			Mode: model.ModeHTTP, VIP: "192.0.2.10", Addresses: webAddrs,
			Listeners: []model.Listener{
				{Port: 80, IPv4: true, IPv6: true, Action: model.ActionRedirectHTTPS},
				dual(443, 80, true),
			},
			TLS: &model.TLS{Certificate: "wildcard.example.org", MinVersion: "1.3", CipherProfile: "modern"},
			Backend: model.Backend{
				Group:   "web_b",
				Servers: []model.Server{{Name: "b1", Address: netip.MustParseAddr("203.0.113.13")}},
				Port:    80, Software: "nginx", Balance: "source",
				Check: httpCheck("/", "b.example.org", "2xx"),
				Proxy: model.ProxyNone, ForwardFor: true, MinUp: 1,
			},
			AllowedSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:100::/48")},
			Timeouts:       web,
			Owner:          "web-team",
			Contacts:       []string{"web@example.org"},
		},
		{
			Name: "web/c", Source: "web/c.yaml", FQDN: "c.example.org",
			Mode: model.ModeHTTP, VIP: "192.0.2.10", Addresses: webAddrs,
			Listeners: []model.Listener{dual(80, 443, false), dual(443, 443, true)},
			TLS:       &model.TLS{Certificate: "wildcard.example.org", MinVersion: "1.2", CipherProfile: "intermediate"},
			Backend: model.Backend{
				Group:   "web_c",
				Servers: []model.Server{{Name: "c1", Address: netip.MustParseAddr("203.0.113.14")}, {Name: "c2", Address: netip.MustParseAddr("203.0.113.15"), Disabled: true}},
				Port:    443, Software: "apache2", Balance: "roundrobin",
				Check: httpCheck("/", "c.example.org", ""),
				Proxy: model.ProxyNone, ForwardFor: true, TLS: true, MinUp: 2,
			},
			Timeouts: web,
			Owner:    "web-team",
			Contacts: []string{"web@example.org"},
		},
		{
			Name: "web/v6only", Source: "web/v6only.yaml", FQDN: "v6.example.org",
			Mode: model.ModeHTTP, VIP: "2001-db8--60", Addresses: Addrs("2001:db8::60"),
			Listeners: []model.Listener{{Port: 80, IPv6: true, Action: model.ActionServe, BackendPort: 80}},
			Backend: model.Backend{
				Servers: []model.Server{{Name: "2001:db8:1::61", Address: netip.MustParseAddr("2001:db8:1::61")}},
				Port:    80, Software: "generic", Balance: "roundrobin",
				Check: model.Check{Type: model.CheckNone},
				Proxy: model.ProxyNone, MinUp: 1,
			},
			Timeouts: web,
			Owner:    "web-team",
		},
	}
}

func vips(webAddrs, mailAddrs []netip.Addr) []model.VIP {
	return []model.VIP{
		{
			Name: "192.0.2.10", Addresses: webAddrs, Services: []string{"web/a", "web/b", "web/c"},
			Ports: []model.Port{
				{Port: 80, Mode: model.ModeHTTP, Services: []string{"web/a", "web/b", "web/c"}},
				{Port: 443, Mode: model.ModeHTTP, TLS: true, Services: []string{"web/a", "web/b", "web/c"}},
			},
		},
		{
			Name: "192.0.2.20", Addresses: mailAddrs, Services: []string{"mail/imap", "mail/smtp"},
			Ports: []model.Port{
				{Port: 25, Mode: model.ModeTCP, Services: []string{"mail/smtp"}},
				{Port: 465, Mode: model.ModeTCP, Services: []string{"mail/smtp"}},
				{Port: 587, Mode: model.ModeTCP, Services: []string{"mail/smtp"}},
				{Port: 993, Mode: model.ModeTCP, Services: []string{"mail/imap"}},
			},
		},
		{
			Name: "192.0.2.30", Addresses: Addrs("192.0.2.30"), Services: []string{"ldap/directory"},
			Ports: []model.Port{
				{Port: 389, Mode: model.ModeTCP, Services: []string{"ldap/directory"}},
				{Port: 636, Mode: model.ModeTCP, TLS: true, Services: []string{"ldap/directory"}},
			},
		},
		{
			Name: "192.0.2.40", Addresses: Addrs("192.0.2.40"), Services: []string{"erp/app"}, Transparent: true,
			Ports: []model.Port{
				{Port: 3200, Mode: model.ModeTCP, Services: []string{"erp/app"}},
				{Port: 3300, Mode: model.ModeTCP, Services: []string{"erp/app"}},
			},
		},
		{
			Name: "2001-db8--60", Addresses: Addrs("2001:db8::60"), Services: []string{"web/v6only"},
			Ports: []model.Port{{Port: 80, Mode: model.ModeHTTP, Services: []string{"web/v6only"}}},
		},
	}
}

func nodes() []model.Node {
	return []model.Node{
		{
			Hostname: "lb1", RouterID: netip.MustParseAddr("198.51.100.11"), ASN: 65000,
			RouteReflectors: []model.Peer{
				{Name: "rr1", Address: netip.MustParseAddr("198.51.100.2"), ASN: 65000},
				{Name: "rr2", Address: netip.MustParseAddr("2001:db8:ffff::2"), ASN: 65000},
			},
			BFD: true, VIPInterface: "lo",
			Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8:ffff::11")},
			Source:    "nodes/lb1.yaml",
		},
		{
			Hostname: "lb2", RouterID: netip.MustParseAddr("198.51.100.12"), ASN: 65001,
			RouteReflectors: []model.Peer{{Name: "rr1", Address: netip.MustParseAddr("198.51.100.2"), ASN: 65000}},
			VIPInterface:    "lo",
			Addresses:       []netip.Addr{netip.MustParseAddr("198.51.100.12")},
			Source:          "nodes/lb2.yaml",
		},
	}
}

func weight(w int) *int { return &w }
