package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// reference is the encoding Encode must reproduce byte for byte: one
// json.Encoder over the whole site.
func reference(t *testing.T, s *Site) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testService(i int) Service {
	s := Service{
		Name:      fmt.Sprintf("team%03d/s%05d", i/100, i),
		Source:    fmt.Sprintf("team%03d/s%05d.yaml", i/100, i),
		FQDN:      fmt.Sprintf("s%d.example", i),
		Mode:      ModeHTTP,
		VIP:       "192.0.2.1",
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
		Listeners: []Listener{{Port: 80, IPv4: true, IPv6: true, Action: ActionRedirectHTTPS}, {Port: 443, IPv4: true, TLS: true, Action: ActionServe, BackendPort: 80}},
		Backend:   Backend{Servers: []Server{{Name: "web1", Address: netip.MustParseAddr("203.0.113.1")}}, Port: 80, Software: "apache2", Check: Check{Type: CheckHTTP, Path: "/health?a=1&b=<2>"}, MinUp: 1},
		Timeouts:  Timeouts{ConnectMS: 5000, ClientMS: 30000, ServerMS: 30000},
	}
	switch i % 4 {
	case 0:
		// Later services grow, so that the first part underestimates
		// the list.
		for k := range i / 50 {
			s.Contacts = append(s.Contacts, fmt.Sprintf("c%d@example", k))
		}
	case 1:
		s.TLS = &TLS{Certificate: "c", MinVersion: "1.2", CipherProfile: "intermediate", HSTSMaxAge: 3600}
		s.Aliases = []string{"www.example", "ü.example", `ends in \`, `{"a": [1, {}], "b": []}`, "\\\""}
	case 2:
		s.Redirects = []Redirect{{From: "/old", To: "https://x.example/?a=1&b=2", Code: 301}}
		s.Owner = "team <ops> & \"friends\"\n\t\u2028"
	case 3:
		s.Listeners, s.Addresses, s.Backend.Servers = []Listener{}, nil, nil
		s.Contacts = []string{}
	}
	return s
}

func TestEncodeMatchesOneEncoder(t *testing.T) {
	sizes := []int{0, 1, 2, chunk - 1, chunk, chunk + 1, 3*chunk + 7, 5000}
	for _, n := range sizes {
		for _, lists := range []string{"nil", "empty", "full"} {
			t.Run(fmt.Sprintf("%d-%s", n, lists), func(t *testing.T) {
				s := &Site{FormatVersion: FormatVersion, Name: "a \"site\" <&>\n\"services\": null"}
				switch lists {
				case "empty":
					s.Services, s.VIPs, s.Nodes = []Service{}, []VIP{}, []Node{}
				case "full":
					s.VIPs = []VIP{{Name: "192.0.2.1", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Services: []string{"a", "b"}, Ports: []Port{{Port: 80, Mode: ModeHTTP, Services: []string{"a"}}}}, {Name: "e", Ports: []Port{}}}
					s.Nodes = []Node{{Hostname: "lb1", RouterID: netip.MustParseAddr("198.51.100.1"), ASN: 65000, RouteReflectors: []Peer{{Name: "rr", Address: netip.MustParseAddr("198.51.100.2"), ASN: 65000}}, Addresses: []netip.Addr{}}}
				}
				for i := range n {
					s.Services = append(s.Services, testService(i))
				}
				got, err := Encode(s)
				if err != nil {
					t.Fatal(err)
				}
				if want := reference(t, s); !bytes.Equal(got, want) {
					i := 0
					for i < min(len(got), len(want)) && got[i] == want[i] {
						i++
					}
					t.Fatalf("Encode differs from one json.Encoder at byte %d of %d/%d:\ngot  %q\nwant %q", i, len(got), len(want), got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
				}
				back, err := DecodeUnchecked(got) // the strings test the encoding, not the grammar
				if err != nil {
					t.Fatal(err)
				}
				if len(back.Services) != n {
					t.Fatalf("decoded %d services, want %d", len(back.Services), n)
				}
			})
		}
	}
}

// TestOldFormatRefused: a version 1 resolved model (with tls.redirect_http)
// is refused for its version, not for the field it has.
func TestOldFormatRefused(t *testing.T) {
	v1 := []byte(`{
  "format_version": 1,
  "name": "campus",
  "services": [
    {"name": "web/a", "tls": {"certificate": "a", "min_version": "1.2", "cipher_profile": "intermediate", "redirect_http": true}}
  ],
  "vips": [],
  "nodes": []
}
`)
	for _, decode := range []func([]byte) (*Site, error){Decode, DecodeUnchecked} {
		_, err := decode(v1)
		if !errors.Is(err, ErrFormatVersion) || !strings.Contains(err.Error(), "format version 1, want 2") {
			t.Errorf("version 1 model: %v", err)
		}
	}
	b, err := Encode(&Site{FormatVersion: FormatVersion, Name: "campus"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeUnchecked(b); err != nil {
		t.Errorf("current version: %v", err)
	}
}
