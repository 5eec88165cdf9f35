package model

import (
	"reflect"
	"testing"
)

// TestCertificates: services sharing a certificate are grouped under it,
// with every name it must cover; a service without TLS needs none.
func TestCertificates(t *testing.T) {
	s := validSite(3)
	s.Services[1].TLS.Certificate = s.Services[0].TLS.Certificate
	s.Services[1].VIP = "192.0.2.11"
	s.Services[2].TLS = nil
	got := s.Certificates()
	want := []CertificateUse{{
		Name:     "s0.example.org",
		VIPs:     []string{"192.0.2.10", "192.0.2.11"},
		Services: []string{"team000/s00000", "team000/s00001"},
		Hosts:    []string{"s0.example.org", "s1.example.org", "www.s0.example.org", "www.s1.example.org"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Certificates() = %+v\nwant %+v", got, want)
	}
	if !got[0].Uses(func(v string) bool { return v == "192.0.2.11" }) || got[0].Uses(func(string) bool { return false }) {
		t.Error("Uses")
	}
	if n := len((&Site{}).Certificates()); n != 0 {
		t.Errorf("empty site: %d certificates", n)
	}
}
