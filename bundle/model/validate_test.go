package model

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func validSite(n int) *Site {
	s := &Site{FormatVersion: FormatVersion, Name: "campus", VIPs: []VIP{}, Nodes: []Node{{
		Hostname: "lb1", RouterID: netip.MustParseAddr("198.51.100.11"), ASN: 65000, VIPInterface: "lo", Source: "nodes/lb1.yaml",
		Addresses:       []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8:ffff::11")},
		RouteReflectors: []Peer{{Name: "rr1", Address: netip.MustParseAddr("198.51.100.2"), ASN: 65000}},
	}}}
	for i := range n {
		s.Services = append(s.Services, Service{
			Name: fmt.Sprintf("team%03d/s%05d", i/100, i), Source: fmt.Sprintf("team%03d/s%05d.yaml", i/100, i),
			FQDN: fmt.Sprintf("s%d.example.org", i), Aliases: []string{fmt.Sprintf("www.s%d.example.org", i)},
			Mode: ModeHTTP, VIP: "192.0.2.10", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
			Listeners: []Listener{{Port: 80, IPv4: true, Action: ActionRedirectHTTPS}, {Port: 443, IPv4: true, TLS: true, Action: ActionServe}},
			TLS:       &TLS{Certificate: fmt.Sprintf("s%d.example.org", i), MinVersion: "1.2", CipherProfile: "intermediate"},
			Backend: Backend{Group: "web", Servers: []Server{{Name: "web1", Address: netip.MustParseAddr("203.0.113.1")}, {Name: "web2", Address: netip.MustParseAddr("203.0.113.2")}},
				Port: 8080, Software: "apache2", Balance: "roundrobin", Proxy: ProxyNone,
				Check: Check{Type: CheckHTTP, Method: "GET", Path: "/health?x=1", Host: fmt.Sprintf("s%d.example.org", i), ExpectStatus: "2xx", IntervalMS: 2000, Rise: 2, Fall: 3}},
			Redirects:      []Redirect{{From: "/old", To: "https://www.example.org/new?a=1#x", Code: 301}},
			AllowedSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Timeouts:       Timeouts{ConnectMS: 5000, ClientMS: 30000, ServerMS: 30000},
			Owner:          "web-team", Contacts: []string{"web@example.org"},
		})
	}
	return s
}

func TestValidateAcceptsAValidSite(t *testing.T) {
	if err := validSite(3).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestGrammar(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		check func(string) error
		ok    []string
		bad   map[string]string // value -> error substring
	}{
		{"name", checkName, []string{"campus", "192.0.2.10", "2001-db8--10", "web_team", "a.b-c"},
			map[string]string{"": "empty", "..": "starts with a letter", "-x": "starts with a letter", "a/b": "'/'", "a b": "' '",
				"a\nb": "U+000A", strings.Repeat("a", 129): "longer than 128", "é": "'é'"}},
		{"host name", checkHostname, []string{"lb1", "a.example.org", "_dmarc.x.example", "A-1.example"},
			map[string]string{"": "empty", "a..b": "labels of 1 to 63", "-a.x": "neither starts", "a.x.": "labels of 1 to 63",
				"a b.x": "' '", "a\r": "U+000D", strings.Repeat("a", 64) + ".x": "labels of 1 to 63"}},
		{"tree path", checkTreePath, []string{"web/a", "web/typo3/physik.yaml", "a"},
			map[string]string{"../x": "starting with '.'", "a//b": "empty segment", "/a": "empty segment", "a/.b": "starting with '.'",
				"a\x00": "U+0000", "a b": "' '"}},
		{"URI path", func(s string) error { return checkURIPath(s, true) }, []string{"/", "/health?x=1&y=%41", "/a(1)*;=:@!~,+"},
			map[string]string{"": "starts with /", "x": "starts with /", "/a b": "' '", "/a#b": "'#'", "/$x": "'$'", "/a'b": "'\\''",
				`/a"b`: "'\"'", "/a{b}": "'{'", "/a\\b": "'\\\\'"}},
		{"redirect target", checkRedirectTarget, []string{"/", "https://x.example/a?b='1'&c=$d#e", "http://x/%%"},
			map[string]string{"": "a redirect target is", "ftp://x": "a redirect target is", "/a b": "' '", `/a"b`: "'\"'",
				"/a\\b": "'\\\\'", "/a{b}": "'{'", "/a\rb": "U+000D"}},
		{"method", checkMethod, []string{"GET", "HEAD", "OPTIONS"},
			map[string]string{"": "empty", "get": "'g'", "GET /": "' '", "GET\n": "U+000A", strings.Repeat("A", 17): "longer than 16"}},
		{"e-mail", checkEmail, []string{"a@b.example", "a.b+c@x.org"},
			map[string]string{"a": "not an e-mail", "a@b@c": "not an e-mail", "<a@b>": "'<'", "a@b\n": "U+000A"}},
		{"text characters", func(s string) error { return checkChars(s, 64) }, []string{"plain", "ünïcödé"},
			map[string]string{"\u202e": "U+202E", "\u2028": "U+2028", "\u200b": "U+200B", "\x85": "invalid UTF-8", "\u0085": "U+0085", "\x7f": "U+007F"}},
	} {
		for _, v := range tc.ok {
			if err := tc.check(v); err != nil {
				t.Errorf("%s %q: %v", tc.kind, v, err)
			}
		}
		for v, want := range tc.bad {
			err := tc.check(v)
			if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrGrammar) {
				t.Errorf("%s %q: %v, want %q", tc.kind, v, err, want)
			}
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	s := validSite(4)
	s.Services[3].Backend.Check.Method = "GET\nglobal"
	s.Services[1].Redirects[0].To = "/x\r"
	s.Nodes[0].RouteReflectors[0].Name = `rr1"; import all; #`
	err := s.Validate()
	want := "services[1].redirects[0].to: control character U+000D\n" +
		"services[3].backend.check.method: control character U+000A\n" +
		"nodes[0].route_reflectors[0].name: character '\"' (U+0022) not allowed in a name ([A-Za-z0-9._-])"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "services[1].redirects[0].to" {
		t.Errorf("first field error %+v", fe)
	}
	if _, err := Decode(mustEncode(t, s)); err == nil || !strings.Contains(err.Error(), "services[3].backend.check.method") {
		t.Errorf("Decode: %v", err)
	}
	if _, err := DecodeUnchecked(mustEncode(t, s)); err != nil {
		t.Errorf("DecodeUnchecked: %v", err)
	}
}

func TestValidateUniqueNames(t *testing.T) {
	s := validSite(3)
	s.Services[2].Name = s.Services[0].Name
	s.VIPs = []VIP{{Name: "192.0.2.10"}, {Name: "192.0.2.10"}}
	s.Nodes[0].RouteReflectors = append(s.Nodes[0].RouteReflectors, Peer{Name: "rr1", Address: netip.MustParseAddr("198.51.100.3")})
	err := s.Validate()
	for _, want := range []string{`services[2].name: "team000/s00000" repeats services[0].name`, `vips[1].name: "192.0.2.10" repeats vips[0].name`,
		`nodes[0].route_reflectors[1].name: "rr1" repeats nodes[0].route_reflectors[0].name`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

func mustEncode(t *testing.T, s *Site) []byte {
	t.Helper()
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkValidate10k is the grammar check of a 10,000-service model, as
// the resolver and a node's Decode run it.
func BenchmarkValidate10k(b *testing.B) {
	s := validSite(10000)
	b.ResetTimer()
	for b.Loop() {
		if err := s.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestValidateMonitoring(t *testing.T) {
	s := validSite(1)
	s.Monitoring = []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32"), {}, netip.MustParsePrefix("2001:db8::/64")}
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "monitoring[1]: ") {
		t.Fatalf("got %v, want an error at monitoring[1]", err)
	}
	s.Monitoring = []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("2001:db8::/64")}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	// A prefix is typed: text that is no prefix is refused when decoding.
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	hostile := bytes.Replace(b, []byte(`"198.51.100.7/32"`), []byte(`"198.51.100.0/24\nx"`), 1)
	if _, err := Decode(hostile); err == nil || !strings.Contains(err.Error(), "198.51.100.0/24") {
		t.Errorf("decoding a prefix with a line break: %v", err)
	}
}

// TestTypedAddresses: a VIP address is typed, so a string that is no
// address is refused when the model is decoded, and the only text a
// netip.Addr carries, its zone, is refused by Validate.
func TestTypedAddresses(t *testing.T) {
	b, err := Encode(validSite(1))
	if err != nil {
		t.Fatal(err)
	}
	hostile := bytes.Replace(b, []byte(`"2001:db8::10"`), []byte(`"2001:db8::10 transparent"`), 1)
	if _, err := Decode(hostile); err == nil || !strings.Contains(err.Error(), "2001:db8::10 transparent") {
		t.Errorf("decoding an address with a keyword: %v", err)
	}
	empty := bytes.Replace(b, []byte(`"2001:db8::10"`), []byte(`""`), 1)
	if _, err := Decode(empty); err == nil || !strings.Contains(err.Error(), `services[0].addresses[1]: "invalid IP": not an IP address`) {
		t.Errorf("decoding an empty address: %v", err)
	}
	for _, a := range []netip.Addr{{}, netip.MustParseAddr("2001:db8::10%lo transparent")} {
		s := validSite(1)
		s.VIPs = []VIP{{Name: "192.0.2.10", Addresses: []netip.Addr{a}, Services: []string{s.Services[0].Name}}}
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "vips[0].addresses[0]") {
			t.Errorf("address %q: %v", a, err)
		}
	}
}
