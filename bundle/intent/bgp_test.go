package intent

import (
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

const bgpNode1 = `router_id: 198.51.100.11
asn: 65000
bfd: true
route_reflectors:
  - name: rr1
    address: 198.51.100.2
    asn: 65000
    password_file: /etc/lbctl/bgp/rr1.conf
    multihop: 2
    source_address: 198.51.100.111
    bfd: {interval: 300ms, multiplier: 5}
bgp:
  graceful_restart: {enabled: true, restart_time: 90}
  communities: ["65000:100", "65000:1"]
  large_communities: ["65000:1:100"]
  med: 10
  local_pref: 200
  prepend: 1
addresses: [198.51.100.11]
`

const bgpNode2 = `router_id: 198.51.100.12
asn: 65000
route_reflectors: [{name: rr1, address: 198.51.100.2, asn: 65000}]
bgp:
  graceful_restart: on
  local_pref: 40
  backup: {prepend: 1}
`

// TestBGP: the node profiles' session options and attributes reach the
// model with the site's communities; a VIP carries the union of its
// services' communities (I28); with a primary VIP in the site every node
// has its backup attributes (I29).
func TestBGP(t *testing.T) {
	files := map[string]string{
		"site.yaml":      "site: test\nbgp: {communities: [\"65000:1\", \"64512:7\"], large_communities: [\"65000:0:1\"]}\n",
		"nodes/lb1.yaml": bgpNode1,
		"nodes/lb2.yaml": bgpNode2,
		"defaults.yaml":  "defaults:\n  bgp: {communities: [\"65000:300\"]}\n",
		"a.yaml":         "fqdn: web.example.org\nbackend: web\nbgp: {communities: [\"65000:200\"], primary: LB1}\n",
		"b.yaml":         "fqdn: other.example.org\nbackend: web\nbgp: {large_communities: [\"65000:2:200\"]}\n",
		"c.yaml":         "fqdn: dual.example.org\nbackend: web\n",
	}
	site, err := resolveFiles(t, testDNS, files)
	if err != nil {
		t.Fatalf("resolve:\n%v", err)
	}
	lb1, lb2 := site.Node("lb1"), site.Node("lb2")
	want(t, "rr1", lb1.RouteReflectors[0].PasswordFile, "/etc/lbctl/bgp/rr1.conf")
	want(t, "multihop", lb1.RouteReflectors[0].Multihop, 2)
	want(t, "source", lb1.RouteReflectors[0].SourceAddress.String(), "198.51.100.111")
	want(t, "bfd", [2]int{lb1.RouteReflectors[0].BFDIntervalMS, lb1.RouteReflectors[0].BFDMultiplier}, [2]int{300, 5})
	want(t, "gr", [2]any{lb1.BGP.GracefulRestart, lb1.BGP.RestartTime}, [2]any{true, 90})
	want(t, "communities", text(lb1.BGP.Communities), "64512:7 65000:1 65000:100")
	want(t, "large", text(lb1.BGP.LargeCommunities), "65000:0:1 65000:1:100")
	want(t, "med", *lb1.BGP.MED, uint32(10))
	want(t, "prepend", lb1.BGP.Prepend, 1)
	want(t, "lb2 communities", text(lb2.BGP.Communities), "64512:7 65000:1")
	t.Run("I28 a VIP carries the union of its services' communities and their primary", func(t *testing.T) {
		v := site.VIP("192.0.2.10")
		want(t, "communities", text(v.BGP.Communities), "65000:200 65000:300")
		want(t, "large", text(v.BGP.LargeCommunities), "65000:2:200")
		want(t, "primary", v.BGP.Primary, "lb1")
		want(t, "dual", site.VIP("192.0.2.20").BGP.Primary, "")
	})
	t.Run("I29 with a primary VIP every node has backup attributes", func(t *testing.T) {
		want(t, "lb1", *lb1.BGP.Backup, model.Backup{LocalPref: 50, Prepend: 3})
		want(t, "lb2", *lb2.BGP.Backup, model.Backup{LocalPref: 20, Prepend: 1})
		delete(files, "a.yaml")
		files["a.yaml"] = "fqdn: web.example.org\nbackend: web\n"
		site, err := resolveFiles(t, testDNS, files)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "no primary: no backup", site.Node("lb1").BGP.Backup == nil, true)
	})
	t.Run("backup local preference not below the node's", func(t *testing.T) {
		files["nodes/lb2.yaml"] = "router_id: 198.51.100.12\nasn: 65000\nroute_reflectors: [{name: rr1, address: 198.51.100.2, asn: 65000}]\nbgp: {backup: {local_pref: 100}}\n"
		files["a.yaml"] = "fqdn: web.example.org\nbackend: web\nbgp: {primary: lb2}\n"
		_, err := resolveFiles(t, testDNS, files)
		if err == nil || !strings.Contains(err.Error(), "nodes/lb2.yaml:4:") || !strings.Contains(err.Error(), "backup local preference 100 is not below the node's 100") {
			t.Errorf("err = %v", err)
		}
	})
}

func text[T interface{ String() string }](cs []T) string {
	var s string
	for i, c := range cs {
		if i > 0 {
			s += " "
		}
		s += c.String()
	}
	return s
}
