package plan

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

// oldStateFirewall is the firewall of a state file as lbctl wrote it while
// model.Firewall held addresses as strings.
const oldStateFirewall = `{"vips4":["192.0.2.10","192.0.2.11"],"vips6":["2001:db8::10"],` +
	`"accept4":[{"addr":"192.0.2.10","port":443}],"accept6":[{"addr":"2001:db8::10","port":443}],` +
	`"transparent":true,"intercepts":[{"prefix":"10.0.0.0/8","port":80,"to_addr":"192.0.2.10","to_port":80},` +
	`{"prefix":"172.16.0.0/12","port":443,"to_addr":"","to_port":8443}],` +
	`"handoff":{"port":4789,"peers4":["198.51.100.12"],"backends4":[{"addr":"203.0.113.61","port":3200}],"mss":1410}}`

// TestOldStateDecodes: a state file written by an lbctl whose firewall held
// strings decodes into the typed firewall, and encodes back to the same
// bytes.
func TestOldStateDecodes(t *testing.T) {
	old := `{"serial":7,"vips":null,"firewall":` + oldStateFirewall + `,"bird_conf":null}`
	var st State
	if err := json.Unmarshal([]byte(old), &st); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	fw := st.Firewall
	if len(fw.VIPs4) != 2 || fw.VIPs4[1] != a("192.0.2.11") || fw.VIPs6[0] != a("2001:db8::10") ||
		fw.Accept4[0] != (model.AddrPort{Addr: a("192.0.2.10"), Port: 443}) ||
		fw.Intercepts[0].Prefix != netip.MustParsePrefix("10.0.0.0/8") || fw.Intercepts[0].ToAddr != a("192.0.2.10") ||
		fw.Intercepts[1].ToAddr.IsValid() ||
		fw.Handoff.Peers4[0] != a("198.51.100.12") || fw.Handoff.Backends4[0].Addr != a("203.0.113.61") {
		t.Fatalf("decoded firewall %+v", fw)
	}
	got, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(old)) {
		t.Fatalf("re-encoded state\n%s\nwant\n%s", got, old)
	}
}
