package model

import (
	"strings"
	"testing"
)

// TestBGPDecodeRefusesHostileValues: a bundle's BGP values are checked
// when a node decodes it: community grammar and ranges, password file
// names BIRD could not quote or that escape a path, GRACEFUL_SHUTDOWN in
// a list, a primary that is no node, a backup local preference not below
// the node's.
func TestBGPDecodeRefusesHostileValues(t *testing.T) {
	good, err := Encode(validSite(1))
	if err != nil {
		t.Fatal(err)
	}
	const peerASN = "\"asn\": 65000\n" // the route reflector's, the last field of the peer
	for _, tc := range []struct{ old, new, want string }{
		{`"asn": 65000,`, `"asn": 65000, "bgp": {"communities": ["65000:70000"]},`, "want ASN:VALUE"},
		{`"asn": 65000,`, `"asn": 65000, "bgp": {"communities": ["65000:+1"]},`, "want ASN:VALUE"},
		{`"asn": 65000,`, `"asn": 65000, "bgp": {"large_communities": ["1:2"]},`, "want ASN:VALUE:VALUE"},
		{`"asn": 65000,`, `"asn": 65000, "bgp": {"communities": ["65535:0"]},`, "reserved for graceful shutdown"},
		{`"asn": 65000,`, `"asn": 65000, "bgp": {"prepend": 9},`, "out of range 0..8"},
		{`"asn": 65000,`, `"asn": 65000, "bgp": {"local_pref": 40, "backup": {"local_pref": 40, "prepend": 1}},`, "not below the node's 40"},
		{peerASN, `"asn": 65000, "password_file": "/etc/x\"; import all; #"`, `character '"'`},
		{peerASN, `"asn": 65000, "password_file": "/etc/../shadow"`, "path segment"},
		{peerASN, `"asn": 65000, "password_file": "rr1.conf"`, "absolute path"},
		{peerASN, `"asn": 65000, "multihop": 256`, "out of range 0..255"},
		{`"vip": "192.0.2.10",`, `"vip": "192.0.2.10", "bgp": {"primary": "lb9"},`, `primary "lb9" is no node`},
	} {
		b := strings.Replace(string(good), tc.old, tc.new, 1)
		if b == string(good) {
			t.Fatalf("%q not in the encoded site", tc.old)
		}
		if _, err := Decode([]byte(b)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.new, err, tc.want)
		}
	}
}

func TestCommunityText(t *testing.T) {
	for _, s := range []string{"0:0", "65535:65535", "65000:1"} {
		c, err := ParseCommunity(s)
		if err != nil || c.String() != s {
			t.Errorf("%s: %v %v", s, c, err)
		}
	}
	for _, s := range []string{"", ":", "1", "1:2:3", "65536:1", "01:1", " 1:1", "1:1 ", "-1:1", "0x10:1"} {
		if _, err := ParseCommunity(s); err == nil {
			t.Errorf("community %q accepted", s)
		}
	}
	if c, err := ParseLargeCommunity("4294967295:0:1"); err != nil || c.Bird() != "(4294967295,0,1)" {
		t.Errorf("large: %v %v", c, err)
	}
	if _, err := ParseLargeCommunity("4294967296:0:1"); err == nil {
		t.Error("large community out of range accepted")
	}
}
