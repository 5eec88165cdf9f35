package testbed

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

func svc(name, mode, check string, port int, servers ...string) model.Service {
	s := model.Service{Name: name, FQDN: strings.ReplaceAll(name, "/", "-") + ".tb.example", Mode: mode,
		Listeners: []model.Listener{{Port: port, IPv4: true, Action: model.ActionServe, BackendPort: port}},
		Backend:   model.Backend{Port: port, Check: model.Check{Type: check}}}
	for i := 0; i+1 < len(servers); i += 2 {
		s.Backend.Servers = append(s.Backend.Servers, model.Server{Name: servers[i], Address: netip.MustParseAddr(servers[i+1])})
	}
	return s
}

func planModel() *model.Site {
	web := svc("web/a", model.ModeHTTP, model.CheckHTTP, 80, "web1", "203.0.113.21", "web2", "2001:db8:203::22")
	web.Listeners = append(web.Listeners,
		model.Listener{Port: 80, Action: model.ActionRedirectHTTPS},
		model.Listener{Port: 443, TLS: true, Action: model.ActionServe, BackendPort: 8080})
	web.TLS = &model.TLS{Certificate: "wild"}
	web.Aliases = []string{"www.tb.example"}
	secure := svc("web/b", model.ModeHTTP, model.CheckHTTP, 8443, "sec1", "2001:db8:77::5")
	secure.Backend.TLS = true
	secure.TLS = &model.TLS{Certificate: "wild"}
	return &model.Site{
		Name: "tb",
		Services: []model.Service{
			svc("mail/smtp", model.ModeTCP, model.CheckSMTP, 25, "mx1", "203.0.113.41"),
			svc("dir/ldap", model.ModeTCP, model.CheckLDAP, 389, "ldap1", "203.0.113.51"),
			// Same host as web1 under another name, another port: one namespace.
			svc("apps/erp", model.ModeTCP, model.CheckTCP, 3200, "web1-erp", "203.0.113.21"),
			web, secure,
		},
		Nodes: []model.Node{
			{Hostname: "lb-b", ASN: 65001, Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("2001:db8:ffff::12")},
				RouteReflectors: []model.Peer{{Name: "rr", Address: netip.MustParseAddr("198.51.100.2"), ASN: 65001}}},
			{Hostname: "lb-a", ASN: 65001, Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.21"), netip.MustParseAddr("2001:db8:ffff::11")},
				RouteReflectors: []model.Peer{{Name: "rr", Address: netip.MustParseAddr("198.51.100.2"), ASN: 65001}}},
		},
	}
}

func TestPlanBackendsAndNodes(t *testing.T) {
	l, err := plan(planModel(), "tb-", "/run/x")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range l.backends {
		got = append(got, fmt.Sprintf("%s %s %s http%v https%v tcp%v smtp%v ldap%v %v", b.NetNS, b.Name, b.Address,
			b.HTTP, b.HTTPS, b.TCP, b.SMTP, b.LDAP, b.Services))
	}
	want := []string{
		"tb-be1 web1 203.0.113.21 http[80 8080] https[] tcp[3200] smtp[] ldap[] [apps/erp web/a]",
		"tb-be2 mx1 203.0.113.41 http[] https[] tcp[] smtp[25] ldap[] [mail/smtp]",
		"tb-be3 ldap1 203.0.113.51 http[] https[] tcp[] smtp[] ldap[389] [dir/ldap]",
		"tb-be4 sec1 2001:db8:77::5 http[] https[8443] tcp[] smtp[] ldap[] [web/b]",
		"tb-be5 web2 2001:db8:203::22 http[80 8080] https[] tcp[] smtp[] ldap[] [web/a]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("backends:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Nodes in host name order, ASN from the model, extra addresses kept.
	if l.asn != 65001 || l.nodes[0].Hostname != "lb-a" || l.nodes[1].Hostname != "lb-b" {
		t.Errorf("asn %d nodes %s %s", l.asn, l.nodes[0].Hostname, l.nodes[1].Hostname)
	}
	if fmt.Sprint(l.nodes[0].Extra) != "[198.51.100.21 2001:db8:ffff::11]" || fmt.Sprint(l.nodes[1].Extra) != "[2001:db8:ffff::12]" {
		t.Errorf("extra addresses: %v %v", l.nodes[0].Extra, l.nodes[1].Extra)
	}
	steps := l.describe()
	for _, line := range []string{
		"ip -n tb-lb1 addr add 198.51.100.21/25 dev core\n",
		"ip -n tb-lb1 addr add 2001:db8:ffff::11/64 dev core nodad\n",
		"ip -n tb-router addr add 2001:db8:ffff::1/64 dev br-core nodad\n",
		"ip -n tb-rr addr add 2001:db8:ffff::2/64 dev core nodad\n",
		"ip -n tb-be1 -4 route add default via 203.0.113.1 dev eth0\n",
		// Outside the backend /64: host address, on-link gateway, host routes at the nodes.
		"ip -n tb-be4 addr add 2001:db8:77::5/128 dev eth0 nodad\n",
		"ip -n tb-be4 -6 route add default via 2001:db8:203::1 dev eth0 onlink\n",
		"ip -n tb-lb2 route add 2001:db8:77::5/128 dev bk\n",
		"ip -n tb-lb1 link add bk type veth peer name p-lb1 netns tb-bk\n",
		"sysctl tb-lb2 net/ipv4/ip_forward=1\n",
	} {
		if !strings.Contains(steps, line) {
			t.Errorf("steps lack %q", line)
		}
	}
	if n := strings.Count(steps, "2001:db8:ffff::1/64 dev br-core"); n != 1 {
		t.Errorf("router gets the extra /64 %d times", n)
	}
	gw := l.gatewayRoutes(l.nodes[1])
	if len(gw) != 5 || strings.Join(gw[3], " ") != "-n tb-be4 -6 route replace default via 2001:db8:203::2 dev eth0 onlink" {
		t.Errorf("gateway routes: %q", gw)
	}
	hosts, err := certHosts(planModel())
	if err != nil || fmt.Sprint(hosts) != "map[wild:[web-a.tb.example web-b.tb.example www.tb.example]]" {
		t.Errorf("certificate hosts: %v %v", hosts, err)
	}
}

func TestPlanRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(m *model.Site)
		want string
	}{
		{"backend in VIP range", func(m *model.Site) { m.Services[0].Backend.Servers[0].Address = netip.MustParseAddr("192.0.2.5") }, "mx1: address 192.0.2.5: in 192.0.2.0/24, kept for VIPs"},
		{"backend on an LB leg", func(m *model.Site) { m.Services[0].Backend.Servers[0].Address = netip.MustParseAddr("203.0.113.2") }, "belongs to the testbed's lb2"},
		{"backend not documentation", func(m *model.Site) { m.Services[0].Backend.Servers[0].Address = netip.MustParseAddr("10.1.2.3") }, "outside the documentation ranges"},
		{"backend in client net", func(m *model.Site) { m.Services[0].Backend.Servers[0].Address = netip.MustParseAddr("2001:db8:c::9") }, "in the client's prefix"},
		{"port protocols clash", func(m *model.Site) {
			m.Services[1].Backend.Servers[0].Address = netip.MustParseAddr("203.0.113.41")
			m.Services[1].Backend.Port = 25
			m.Services[1].Listeners[0].BackendPort = 25
		}, "port 25: service mail/smtp wants smtp, service dir/ldap wants ldap"},
		{"nine nodes", func(m *model.Site) {
			for i := range 7 {
				m.Nodes = append(m.Nodes, model.Node{Hostname: fmt.Sprintf("lb-%c", 'c'+i)})
			}
		}, "9 node profiles, the testbed runs at most 8"},
		{"other route reflector", func(m *model.Site) { m.Nodes[0].RouteReflectors[0].Address = netip.MustParseAddr("198.51.100.3") }, "route reflector rr at 198.51.100.3"},
		{"node ASNs differ", func(m *model.Site) { m.Nodes[0].ASN = 65002; m.Nodes[0].RouteReflectors[0].ASN = 65002 }, "differs"},
		{"node on the router's extra address", func(m *model.Site) { m.Nodes[0].Addresses = []netip.Addr{netip.MustParseAddr("2001:db8:ffff::1")} }, "::1 and ::2 of its /64"},
		{"node address of the client", func(m *model.Site) { m.Nodes[0].Addresses = []netip.Addr{netip.MustParseAddr("198.51.100.130")} }, "belongs to the testbed's client"},
		{"bad certificate name", func(m *model.Site) { m.Services[3].TLS.Certificate = "../x" }, "not a file name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := planModel()
			c.edit(m)
			_, err := plan(m, "tb-", "/run/x")
			if err == nil && c.name == "bad certificate name" {
				_, err = certHosts(m)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestBirdConfigsParse has bird itself check the rendered configurations.
func TestBirdConfigsParse(t *testing.T) {
	birdBin, err := exec.LookPath("bird")
	if err != nil {
		t.Skip("needs bird (Debian package bird2) to parse the rendered configurations")
	}
	dir := t.TempDir()
	l, err := plan(planModel(), "tb-", dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, conf := range map[string]string{
		"rr":        l.rrConfig(false, false),
		"rr-bfd-v6": l.rrConfig(true, true),
		"router":    l.routerConfig(),
	} {
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(birdBin, "-p", "-c", path).CombinedOutput(); err != nil {
			t.Errorf("bird -p %s: %v\n%s\n%s", name, err, out, conf)
		}
	}
	rr := l.rrConfig(true, true)
	for _, want := range []string{"protocol bgp lb1 {", "neighbor 198.51.100.12 as 65001;", "protocol bgp lb2_v6 {",
		"neighbor 2001:db8:100::11 as 65001;", "rr client;", "bfd on;", "add paths tx;", "export where source = RTS_BGP;"} {
		if !strings.Contains(rr, want) {
			t.Errorf("route reflector config lacks %q", want)
		}
	}
	if r := l.routerConfig(); !strings.Contains(r, "merge paths on;") || !strings.Contains(r, "add paths rx;") {
		t.Errorf("router config lacks ECMP settings:\n%s", r)
	}
}
