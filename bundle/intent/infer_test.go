package intent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lbctl/lbctl/bundle/dns"
	"github.com/lbctl/lbctl/bundle/inventory"
	"github.com/lbctl/lbctl/bundle/model"
)

// fakeDNS is an in-memory resolver.
type fakeDNS map[string][]string

func (f fakeDNS) Lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	as, ok := f[strings.TrimSuffix(strings.ToLower(name), ".")]
	if !ok {
		return nil, fmt.Errorf("%s: no such name: %w", name, dns.ErrNotFound)
	}
	var out []netip.Addr
	for _, a := range as {
		out = append(out, netip.MustParseAddr(a))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

var testDNS = fakeDNS{
	"web.example.org":   {"192.0.2.10"},
	"dual.example.org":  {"192.0.2.20", "2001:db8::20"},
	"v6.example.org":    {"2001:db8::30"},
	"other.example.org": {"192.0.2.10"},
	"app1.example.org":  {"203.0.113.31"},
}

const testInventory = `
all:
  children:
    web:
      hosts:
        web1: {ansible_host: 203.0.113.1}
        web2: {ansible_host: 203.0.113.2}
    mail:
      hosts:
        mx1: {ansible_host: 203.0.113.10}
    named:
      hosts:
        app1.example.org:
`

// resolveFiles resolves an in-memory tree: files maps paths to contents;
// site.yaml is added when missing.
func resolveFiles(t testing.TB, r dns.Resolver, files map[string]string) (*model.Site, error) {
	t.Helper()
	fsys := fstest.MapFS{}
	fsys[SiteFileName] = &fstest.MapFile{Data: []byte("site: test\n")}
	for p, c := range files {
		fsys[p] = &fstest.MapFile{Data: []byte(c)}
	}
	tree, err := LoadFS(fsys, "")
	if err != nil {
		return nil, err
	}
	inv, err := inventory.Parse("inventory.yaml", []byte(testInventory))
	if err != nil {
		t.Fatal(err)
	}
	return tree.Resolve(context.Background(), r, inv)
}

// one resolves a single service file svc.yaml and returns the site.
func one(t *testing.T, svc string) *model.Site {
	t.Helper()
	site, err := resolveFiles(t, testDNS, map[string]string{"svc.yaml": svc})
	if err != nil {
		t.Fatalf("resolve:\n%v", err)
	}
	return site
}

func listeners(s *model.Service) string {
	var out []string
	for _, l := range s.Listeners {
		x := fmt.Sprintf("%d:%s", l.Port, l.Action)
		if l.TLS {
			x += "+tls"
		}
		if l.BackendPort != 0 {
			x += fmt.Sprintf("->%d", l.BackendPort)
		}
		out = append(out, x)
	}
	return strings.Join(out, " ")
}

// TestInference has one case per row of the inference table in
// docs/intents.md (the rule ids match).
func TestInference(t *testing.T) {
	cases := []struct {
		rule  string
		svc   string
		check func(t *testing.T, s *model.Service, site *model.Site)
	}{
		{"I1 tls on, redirect off: 80 passes to the backend, 443 terminates", "fqdn: web.example.org\ntls: {enabled: true, redirect: false}\nbackend: {group: web, software: apache2}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "listeners", listeners(s), "80:serve->80 443:serve+tls->80")
			}},
		{"I2 tls on, redirect on (default): 80 redirects on the LB", "fqdn: web.example.org\ntls: on\nbackend: web\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "listeners", listeners(s), "80:redirect-https 443:serve+tls->80")
			}},
		{"I3 tls off, mode http: port 80 only", "fqdn: web.example.org\nbackend: web\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "listeners", listeners(s), "80:serve->80")
				want(t, "tls", s.TLS == nil, true)
			}},
		{"I4 tls defaults: certificate is the fqdn, TLS 1.2, intermediate", "fqdn: Web.Example.org.\ntls: yes\nbackend: web\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "tls", *s.TLS, model.TLS{Certificate: "web.example.org", MinVersion: "1.2", CipherProfile: "intermediate"})
			}},
		{"I5 apache2/nginx/iis: port 80, http check GET / with Host fqdn", "fqdn: web.example.org\nbackend: {group: web, software: nginx}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "port", s.Backend.Port, 80)
				want(t, "check", s.Backend.Check, model.Check{Type: "http", Method: "GET", Path: "/", Host: "web.example.org", IntervalMS: 2000, Rise: 2, Fall: 3})
			}},
		{"I6 tomcat: port 8080, http check", "fqdn: web.example.org\nbackend: {group: web, software: tomcat}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "port", s.Backend.Port, 8080)
				want(t, "check", s.Backend.Check.Type, "http")
				want(t, "listeners", listeners(s), "80:serve->8080")
			}},
		{"I7 backend tls: port 443 (tomcat 8443)", "fqdn: web.example.org\nbackend: {group: web, software: tomcat, tls: true}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "port", s.Backend.Port, 8443)
				want(t, "backend tls", s.Backend.TLS, true)
			}},
		{"I8 postfix: mode tcp, listeners 25/465/587 passed through, smtp check on 25", "fqdn: web.example.org\nbackend: {group: mail, software: postfix}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "mode", s.Mode, "tcp")
				want(t, "listeners", listeners(s), "25:serve->25 465:serve->465 587:serve->587")
				want(t, "port", s.Backend.Port, 25)
				want(t, "check", s.Backend.Check.Type, "smtp")
			}},
		{"I9 dovecot: mode tcp, listeners 143/993, tcp check on 143", "fqdn: web.example.org\nbackend: {group: mail, software: dovecot}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "listeners", listeners(s), "143:serve->143 993:serve->993")
				want(t, "port", s.Backend.Port, 143)
				want(t, "check", s.Backend.Check.Type, "tcp")
			}},
		{"I10 slapd: mode tcp, listeners 389/636, ldap check on 389", "fqdn: web.example.org\nbackend: {group: web, software: slapd}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "listeners", listeners(s), "389:serve->389 636:serve->636")
				want(t, "check", s.Backend.Check, model.Check{Type: "ldap", IntervalMS: 2000, Rise: 2, Fall: 3})
			}},
		{"I11 generic: http port 80 with a tcp check; tcp the first listener's port", "fqdn: web.example.org\nmode: tcp\nlisteners: [8000, 8001]\nbackend: web\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "software", s.Backend.Software, "generic")
				want(t, "port", s.Backend.Port, 8000)
				want(t, "check", s.Backend.Check.Type, "tcp")
				want(t, "listeners", listeners(s), "8000:serve->8000 8001:serve->8001")
			}},
		{"I12 a tcp listener passes to its own port unless backend.port is set", "fqdn: web.example.org\nmode: tcp\nlisteners: [8000, {port: 9000, backend_port: 9100}]\nbackend: {group: web, port: 7000}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "listeners", listeners(s), "8000:serve->7000 9000:serve->9100")
			}},
		{"I13 with tls on, a listener on an implicit-TLS port terminates TLS and goes to the backend port", "fqdn: web.example.org\ntls: on\nbackend: {group: web, software: slapd}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "listeners", listeners(s), "389:serve->389 636:serve+tls->389")
			}},
		{"I14 mode follows software unless set", "fqdn: web.example.org\nbackend: {group: web, software: iis}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "mode", s.Mode, "http")
			}},
		{"I15 X-Forwarded-For in mode http without PROXY protocol", "fqdn: web.example.org\nbackend: web\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "forward_for", s.Backend.ForwardFor, true)
				want(t, "proxy", s.Backend.Proxy, "none")
			}},
		{"I16 no X-Forwarded-For with PROXY protocol", "fqdn: web.example.org\nbackend: {group: web, proxy: v2}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "forward_for", s.Backend.ForwardFor, false)
			}},
		{"I17 mode http: roundrobin, 5s/30s/30s, tunnel 1h", "fqdn: web.example.org\nbackend: web\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "balance", s.Backend.Balance, "roundrobin")
				want(t, "timeouts", s.Timeouts, model.Timeouts{ConnectMS: 5000, ClientMS: 30000, ServerMS: 30000, TunnelMS: 3600000})
			}},
		{"I18 mode tcp: leastconn, 5s/1h/1h", "fqdn: web.example.org\nbackend: {group: mail, software: postfix}\ntimeouts: {server: 10m}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "balance", s.Backend.Balance, "leastconn")
				want(t, "timeouts", s.Timeouts, model.Timeouts{ConnectMS: 5000, ClientMS: 3600000, ServerMS: 600000})
			}},
		{"I19 VIP addresses are the fqdn's A/AAAA; listeners follow them", "fqdn: dual.example.org\nbackend: web\n",
			func(t *testing.T, s *model.Service, site *model.Site) {
				want(t, "addresses", s.Addresses, []netip.Addr{netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("2001:db8::20")})
				want(t, "ipv4+ipv6", s.Listeners[0].IPv4 && s.Listeners[0].IPv6, true)
				want(t, "vip", site.VIPs[0].Addresses, s.Addresses)
			}},
		{"I20 a listener can leave out a family", "fqdn: dual.example.org\nlisteners: [{port: 80, ipv6: false}]\nbackend: web\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "ipv4/ipv6", [2]bool{s.Listeners[0].IPv4, s.Listeners[0].IPv6}, [2]bool{true, false})
			}},
		{"I21 VIP name: first IPv4 address, else IPv6 with ':' as '-'", "fqdn: v6.example.org\nbackend: web\n",
			func(t *testing.T, s *model.Service, site *model.Site) {
				want(t, "vip", s.VIP, "2001-db8--30")
				want(t, "listener ipv4", s.Listeners[0].IPv4, false)
			}},
		{"I22 transparent means TPROXY on the node (VIP transparent)", "fqdn: web.example.org\nmode: tcp\nlisteners: [3200]\ntransparent: true\nbackend: web\n",
			func(t *testing.T, s *model.Service, site *model.Site) {
				want(t, "transparent", s.Transparent, true)
				want(t, "vip transparent", site.VIPs[0].Transparent, true)
			}},
		{"I23 health check timing and min_up defaults", "fqdn: web.example.org\nbackend: {group: web, check: tcp}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "check", s.Backend.Check, model.Check{Type: "tcp", IntervalMS: 2000, Rise: 2, Fall: 3})
				want(t, "min_up", s.Backend.MinUp, 1)
			}},
		{"I24 redirect code 301 by default", "fqdn: web.example.org\nbackend: web\nredirects: [{from: /b, to: /x}, {from: /a, to: /y, code: 302}]\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "redirects", s.Redirects, []model.Redirect{{From: "/a", To: "/y", Code: 302}, {From: "/b", To: "/x", Code: 301}})
			}},
		{"I25 hosts without ansible_host are resolved by name; literal addresses are used as is", "fqdn: web.example.org\nbackend: {hosts: [app1.example.org, 203.0.113.99, web1]}\n",
			func(t *testing.T, s *model.Service, _ *model.Site) {
				want(t, "servers", s.Backend.Servers, []model.Server{{Name: "203.0.113.99", Address: netip.MustParseAddr("203.0.113.99")}, {Name: "app1.example.org", Address: netip.MustParseAddr("203.0.113.31")}, {Name: "web1", Address: netip.MustParseAddr("203.0.113.1")}})
			}},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			site := one(t, c.svc)
			c.check(t, &site.Services[0], site)
		})
	}
}

func want[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		t.Errorf("%s:\n got  %s\n want %s", what, g, w)
	}
}

// TestAddingAAAAMakesDualStack: adding an AAAA record to a service's name
// changes its addresses and listeners' IPv6 flag, nothing else.
func TestAddingAAAAMakesDualStack(t *testing.T) {
	svc := map[string]string{"svc.yaml": "fqdn: web.example.org\ntls: on\nbackend: web\n"}
	v4, err := resolveFiles(t, testDNS, svc)
	if err != nil {
		t.Fatal(err)
	}
	dual := fakeDNS{}
	for k, v := range testDNS {
		dual[k] = v
	}
	dual["web.example.org"] = []string{"192.0.2.10", "2001:db8::10"}
	ds, err := resolveFiles(t, dual, svc)
	if err != nil {
		t.Fatal(err)
	}
	// Undo exactly the expected differences; the rest must be equal.
	s := ds.Services[0]
	want(t, "addresses", s.Addresses, []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")})
	for i := range s.Listeners {
		if !s.Listeners[i].IPv6 {
			t.Errorf("listener %d not on IPv6", s.Listeners[i].Port)
		}
		ds.Services[0].Listeners[i].IPv6 = false
	}
	ds.Services[0].Addresses = v4.Services[0].Addresses
	ds.VIPs[0].Addresses = v4.VIPs[0].Addresses
	a, _ := model.Encode(v4)
	b, _ := model.Encode(ds)
	if string(a) != string(b) {
		t.Errorf("adding AAAA changed more than addresses and IPv6:\n%s\n---\n%s", a, b)
	}
}

// TestSharedVIP: services with the same address set share one VIP whose
// ports are the union; http services on one port are routed by name.
func TestSharedVIP(t *testing.T) {
	site, err := resolveFiles(t, testDNS, map[string]string{
		"a.yaml": "fqdn: web.example.org\ntls: on\nbackend: web\n",
		"b.yaml": "fqdn: other.example.org\nlisteners: [80, 8080]\nbackend: web\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(site.VIPs) != 1 {
		t.Fatalf("got %d VIPs, want 1", len(site.VIPs))
	}
	v := site.VIPs[0]
	want(t, "vip", v.Name, "192.0.2.10")
	want(t, "services", v.Services, []string{"a", "b"})
	want(t, "ports", v.Ports, []model.Port{
		{Port: 80, Mode: "http", Services: []string{"a", "b"}},
		{Port: 443, Mode: "http", TLS: true, Services: []string{"a"}},
		{Port: 8080, Mode: "http", Services: []string{"b"}},
	})
}

// TestDefaultsMerge: maps merge deeply root to leaf, scalars and lists
// replace, short forms merge like their long forms, null resets.
func TestDefaultsMerge(t *testing.T) {
	site, err := resolveFiles(t, testDNS, map[string]string{
		"defaults.yaml":      "defaults:\n  contacts: [a@example.org, b@example.org]\n  tls: {enabled: true, redirect: false, hsts: 600}\n  backend: {group: web, check: {path: /health, rise: 5}}\n",
		"team/defaults.yaml": "defaults:\n  contacts: [team@example.org]\n  backend:\n    check: {fall: 7}\n",
		"team/svc.yaml":      "fqdn: web.example.org\ntls: on\nbackend:\n  software: apache2\n  check:\n    rise: ~\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := site.Services[0]
	want(t, "name", s.Name, "team/svc")
	want(t, "contacts", s.Contacts, []string{"team@example.org"})
	want(t, "tls", *s.TLS, model.TLS{Certificate: "web.example.org", MinVersion: "1.2", CipherProfile: "intermediate", HSTSMaxAge: 600})
	want(t, "check", s.Backend.Check, model.Check{Type: "http", Method: "GET", Path: "/health", Host: "web.example.org", IntervalMS: 2000, Rise: 2, Fall: 7})
}

func TestValidHostname(t *testing.T) {
	for in, want := range map[string]bool{
		"www.example.org": true, "_sip._tcp.example.org": true, "a-b.example": true, "xn--bcher-kva.example": true,
		"localhost": false, "-a.example": false, "a-.example": false, "a..example": false, "a.example.": false,
		"a b.example": false, "ä.example": false, strings.Repeat("a", 64) + ".example": false,
	} {
		if got := validHostname(in); got != want {
			t.Errorf("validHostname(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestVIPThreads is rule I27: one thread, TLSThreads when any port of the
// VIP terminates TLS.
func TestVIPThreads(t *testing.T) {
	for _, tt := range []struct {
		ports []model.Port
		want  int
	}{
		{nil, 1},
		{[]model.Port{{Port: 80, Mode: "http"}}, 1},
		{[]model.Port{{Port: 3200, Mode: "tcp"}, {Port: 3300, Mode: "tcp"}}, 1},
		{[]model.Port{{Port: 80, Mode: "http"}, {Port: 443, Mode: "http", TLS: true}}, TLSThreads},
		{[]model.Port{{Port: 993, Mode: "tcp", TLS: true}}, TLSThreads},
	} {
		if got := vipThreads(&model.VIP{Ports: tt.ports}); got != tt.want {
			t.Errorf("ports %+v: %d threads, want %d", tt.ports, got, tt.want)
		}
	}
}
