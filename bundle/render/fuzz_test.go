package render_test

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
)

// FuzzRender is a differential test of the renderers: it puts arbitrary
// strings into every string field of the test site that haproxy.cfg,
// crt-lists and bird.conf carry, keeps the models the grammar accepts
// (model.Site.Validate), renders them and parses the files back by
// HAProxy's and BIRD's own lexical rules. The files must have exactly the
// sections, binds, servers and keywords the model implies, and the values
// read back must be the model's: nothing a string holds may add a line, a
// section, a keyword or a word.
func FuzzRender(f *testing.F) {
	f.Add("lab", "a.example.org", "www.a.example.org", "GET", "/health", "a.example.org", "/old", "/new",
		"https://docs.example.org/", "web1", "rr1", "lb1", "a.example.org", "rr2")
	f.Add("campus\nglobal", "a.example.org\r", "x.example }", "GET\nglobal\n    stats socket ipv4@127.0.0.1:9999 level admin",
		"/a b#c", "h\rX", "/x } || { always_true", "/new\r if TRUE", "https://x/%[src]'$HOME\"#x", "s1\n    server evil 198.51.100.66:80",
		`rr1"; import all; #`, "lb1\n", "../../x", "rr1")
	f.Add("l-a_b.1", "A-1.example", "_srv.x", "OPTIONS", "/a%20b?x=1&y=(2)*;=:@!~", "x.y", "/a,b+c", "/to?x='1'&y=$z#frag",
		"http://x/%25%%2", "10.0.0.1", "rr-1.x", "lb-1.example", "c_1.pem", "rr_1-x")
	f.Fuzz(func(t *testing.T, siteName, fqdn, alias, method, checkPath, checkHost, from, to1, to2, server, rr, hostname, cert, rr2 string) {
		site := rendertest.Site()
		site.Name = siteName
		a := site.Service("web/a")
		a.FQDN, a.Aliases = fqdn, []string{alias}
		a.Backend.Check.Method, a.Backend.Check.Path, a.Backend.Check.Host = method, checkPath, checkHost
		a.Redirects[0].To, a.Redirects[1].From, a.Redirects[1].To = to2, from, to1
		a.Backend.Servers[0].Name = server
		a.TLS.Certificate = cert
		site.Nodes[0].RouteReflectors[0].Name = rr
		site.Nodes[0].RouteReflectors[1].Name = rr2
		site.Nodes[0].Hostname = hostname
		if site.Validate() != nil {
			return
		}
		for i := range site.VIPs {
			v := &site.VIPs[i]
			files, err := haproxy.Render(site, v, haproxy.Options{})
			if err != nil {
				// A model the grammar accepts can be semantically wrong
				// for the renderer (an alias equal to another service's
				// FQDN); it must then produce no file at all.
				if files != nil {
					t.Fatalf("vip %s: files and error %v", v.Name, err)
				}
				continue
			}
			checkHAProxy(t, site, v, files)
		}
		for i := range site.Nodes {
			n := &site.Nodes[i]
			conf, err := bird.Config(site, n, bird.Options{})
			if err != nil {
				t.Fatalf("bird.conf of %q: a model the grammar accepts is refused: %v", n.Hostname, err)
			}
			checkBird(t, n, conf)
		}
	})
}

// haproxyLine is one configuration line split into words by HAProxy's rules.
type haproxyLine struct {
	words []string
	text  string
}

// haproxyWords splits a configuration file into lines of words the way
// HAProxy 2.6 does (configuration manual 2.2 and 2.3): blanks separate
// words, '#' outside quotes starts a comment, a backslash outside single
// quotes escapes the next character, single quotes take everything up to
// the next single quote literally, double quotes allow escapes and expand
// environment variables (refused here: the renderers never rely on them).
func haproxyWords(t *testing.T, data []byte) []haproxyLine {
	t.Helper()
	var out []haproxyLine
	for _, text := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var words []string
		var cur strings.Builder
		inWord := false
		end := func() {
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		}
	scan:
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch {
			case c < 0x20 && c != '\t' || c == 0x7f:
				t.Fatalf("control character %#x in line %q", c, text)
			case c == ' ' || c == '\t':
				end()
			case c == '#':
				break scan
			case c == '\\':
				if i+1 >= len(text) {
					t.Fatalf("backslash at the end of line %q", text)
				}
				i++
				cur.WriteByte(text[i])
				inWord = true
			case c == '\'':
				j := strings.IndexByte(text[i+1:], '\'')
				if j < 0 {
					t.Fatalf("unterminated single quote in line %q", text)
				}
				cur.WriteString(text[i+1 : i+1+j])
				i += j + 1
				inWord = true
			case c == '"':
				i++
				for ; i < len(text) && text[i] != '"'; i++ {
					switch text[i] {
					case '$':
						t.Fatalf("environment variable in double quotes in line %q", text)
					case '\\':
						i++
					}
					if i < len(text) {
						cur.WriteByte(text[i])
					}
				}
				if i >= len(text) {
					t.Fatalf("unterminated double quote in line %q", text)
				}
				inWord = true
			default:
				cur.WriteByte(c)
				inWord = true
			}
		}
		end()
		if len(words) > 0 {
			out = append(out, haproxyLine{words: words, text: text})
		}
	}
	return out
}

// logFormat reads a log-format argument back: "%%" is a literal '%', any
// other '%' would be a variable or a sample fetch.
func logFormat(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+1 >= len(s) || s[i+1] != '%' {
				t.Fatalf("log-format %q has a variable", s)
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var haproxySections = map[string]bool{"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"userlist": true, "peers": true, "resolvers": true, "mailers": true, "program": true, "http-errors": true, "ring": true,
	"cache": true, "fcgi-app": true}

var haproxyKeywords = map[string][]string{
	"global": {"master-worker", "log", "log-tag", "stats", "maxconn", "hard-stop-after", "tune.ssl.default-dh-param", "nbthread", "cpu-map", "spread-checks",
		"httpclient.ssl.verify",
		"ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites", "ssl-default-bind-options"},
	"defaults": {"log", "option", "timeout"},
	"frontend": {"mode", "option", "bind", "timeout", "acl", "tcp-request", "http-request", "default_backend", "use_backend"},
	"backend":  {"mode", "balance", "timeout", "option", "http-request", "http-response", "http-check", "default-server", "source", "server"},
}

type section struct {
	kind, name string
	lines      []haproxyLine
}

func checkHAProxy(t *testing.T, site *model.Site, v *model.VIP, files []haproxy.File) {
	t.Helper()
	if files[0].Name != haproxy.ConfigName {
		t.Fatalf("first file %s", files[0].Name)
	}
	var secs []*section
	for _, l := range haproxyWords(t, files[0].Data) {
		if haproxySections[l.words[0]] {
			if strings.HasPrefix(l.text, " ") {
				t.Fatalf("indented section keyword: %q", l.text)
			}
			s := &section{kind: l.words[0]}
			if len(l.words) > 1 {
				s.name = l.words[1]
			}
			if len(l.words) > 2 {
				t.Fatalf("section line with %d words: %q", len(l.words), l.text)
			}
			secs = append(secs, s)
			continue
		}
		if len(secs) == 0 {
			t.Fatalf("line outside a section: %q", l.text)
		}
		s := secs[len(secs)-1]
		if !slices.Contains(haproxyKeywords[s.kind], l.words[0]) {
			t.Fatalf("%s %s: unexpected keyword in %q", s.kind, s.name, l.text)
		}
		s.lines = append(s.lines, l)
	}

	// Sections: global, defaults, a frontend per port, a backend per
	// backend, in that order, nothing else.
	want := []string{"global ", "defaults "}
	for _, p := range v.Ports {
		want = append(want, fmt.Sprintf("frontend fe-%d", p.Port))
	}
	backends, err := haproxy.Backends(site, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		want = append(want, "backend "+b.Name)
	}
	var got []string
	for _, s := range secs {
		got = append(got, s.kind+" "+s.name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("vip %s: sections\n%q\nwant\n%q", v.Name, got, want)
	}

	// global: one admin socket, where the node expects it.
	var sockets []string
	for _, l := range secs[0].lines {
		if l.words[0] == "stats" && len(l.words) > 1 && l.words[1] == "socket" {
			sockets = append(sockets, l.words[2])
		}
	}
	if len(sockets) != 1 || sockets[0] != haproxy.AdminSocket("", v.Name) {
		t.Fatalf("vip %s: stats sockets %q", v.Name, sockets)
	}
	// global: one nbthread, and a cpu-map per thread when the node has
	// cores to pin to (rule I27).
	var nbthread, cpumaps int
	for _, l := range secs[0].lines {
		switch l.words[0] {
		case "nbthread":
			n, err := strconv.Atoi(l.words[len(l.words)-1])
			if err != nil || len(l.words) != 2 || nbthread != 0 {
				t.Fatalf("vip %s: %q", v.Name, l.text)
			}
			nbthread = n
		case "cpu-map":
			cpumaps++
		}
	}
	if nbthread < 1 || (cpumaps != 0 && cpumaps != nbthread) {
		t.Fatalf("vip %s: nbthread %d with %d cpu-map lines", v.Name, nbthread, cpumaps)
	}

	// Frontends: one bind per VIP address of the port's families, on the
	// port.
	for i, p := range v.Ports {
		fe := secs[2+i]
		var v4, v6 bool
		for _, name := range p.Services {
			for _, l := range site.Service(name).Listeners {
				if l.Port == p.Port {
					v4, v6 = v4 || l.IPv4, v6 || l.IPv6
				}
			}
		}
		var wantBinds, gotBinds []string
		for _, a := range v.Addresses {
			ip := a
			if ip.Is4() && v4 || ip.Is6() && v6 {
				wantBinds = append(wantBinds, netip.AddrPortFrom(ip, uint16(p.Port)).String())
			}
		}
		for _, l := range fe.lines {
			if l.words[0] == "bind" {
				gotBinds = append(gotBinds, l.words[1])
			}
		}
		if !slices.Equal(gotBinds, wantBinds) {
			t.Fatalf("vip %s port %d: binds %q, want %q", v.Name, p.Port, gotBinds, wantBinds)
		}
	}

	// Backends: the service's servers and nothing else; the check and
	// the redirects read back as the model's values.
	for i, b := range backends {
		be := secs[2+len(v.Ports)+i]
		svc := site.Service(b.Service)
		var gotServers, wantServers []string
		for _, srv := range svc.Backend.Servers {
			wantServers = append(wantServers, netip.AddrPortFrom(srv.Address, uint16(b.Port)).String())
		}
		var sends, redirects []haproxyLine
		for _, l := range be.lines {
			switch {
			case l.words[0] == "server":
				if len(l.words) < 3 {
					t.Fatalf("server line %q", l.text)
				}
				gotServers = append(gotServers, l.words[2])
			case l.words[0] == "http-check" && l.words[1] == "send":
				sends = append(sends, l)
			case l.words[0] == "http-request" && l.words[1] == "redirect" && l.words[2] == "location":
				redirects = append(redirects, l)
			}
		}
		if !slices.Equal(gotServers, wantServers) {
			t.Fatalf("backend %s: servers %q, want %q", b.Name, gotServers, wantServers)
		}
		c := svc.Backend.Check
		// The renderer's defaults for what the model leaves empty.
		c.Method = cmp.Or(c.Method, "GET")
		c.Path = cmp.Or(c.Path, "/")
		c.Host = cmp.Or(c.Host, svc.FQDN)
		if c.Type == model.CheckHTTP {
			if len(sends) != 1 {
				t.Fatalf("backend %s: %d http-check send lines", b.Name, len(sends))
			}
			w := sends[0].words
			if len(w) != 11 || w[2] != "meth" || w[3] != c.Method || w[4] != "uri" || w[5] != c.Path ||
				w[6] != "ver" || w[7] != "HTTP/1.1" || w[8] != "hdr" || w[9] != "Host" || logFormat(t, w[10]) != c.Host {
				t.Fatalf("backend %s: check %q reads back as %q", b.Name, fmt.Sprint(c.Method, " ", c.Path, " ", c.Host), w)
			}
		} else if len(sends) != 0 {
			t.Fatalf("backend %s: http-check send without an http check", b.Name)
		}
		wantRedirects := 0
		if svc.Mode == model.ModeHTTP {
			wantRedirects = len(svc.Redirects)
		}
		if len(redirects) != wantRedirects {
			t.Fatalf("backend %s: %d redirects, want %d", b.Name, len(redirects), wantRedirects)
		}
		for j, l := range redirects {
			rd := svc.Redirects[j]
			w := l.words
			cond := []string{"{", "path", rd.From, "}", "||", "{", "path_beg", rd.From + "/", "}"}
			if strings.HasSuffix(rd.From, "/") {
				cond = []string{"{", "path_beg", rd.From, "}"}
			}
			wantWords := append([]string{"http-request", "redirect", "location", w[3], "code", fmt.Sprint(rd.Code), "if"}, cond...)
			if !slices.Equal(w, wantWords) || logFormat(t, w[3]) != rd.To {
				t.Fatalf("backend %s: redirect %+v reads back as %q", b.Name, rd, w)
			}
		}
	}

	// crt-lists: a comment, then one certificate per line with the host
	// names it serves.
	for _, f := range files[1:] {
		for _, l := range haproxyWords(t, f.Data) {
			crt := l.words[0]
			if path.Dir(crt) != haproxy.DefaultCertDir || !strings.HasSuffix(crt, ".pem") {
				t.Fatalf("%s: certificate %q outside %s", f.Name, crt, haproxy.DefaultCertDir)
			}
			for _, w := range l.words[1:] {
				if strings.HasPrefix(w, "[") || strings.HasSuffix(w, "]") || strings.HasPrefix(w, "ssl-min-ver") ||
					strings.HasPrefix(w, "TLSv") || strings.Contains(w, ":") || w == "ciphers" || w == "ciphersuites" {
					continue
				}
				if err := checkHost(site, v, w); err != nil {
					t.Fatalf("%s: %v in %q", f.Name, err, l.text)
				}
			}
		}
	}
}

// checkHost reports a host name no service of the VIP has.
func checkHost(site *model.Site, v *model.VIP, h string) error {
	for _, name := range v.Services {
		s := site.Service(name)
		for _, n := range append([]string{s.FQDN}, s.Aliases...) {
			if strings.EqualFold(n, h) {
				return nil
			}
		}
	}
	return fmt.Errorf("host name %q of no service", h)
}

// birdToken is a token of BIRD's configuration language: a word, a string
// (str set) or one of { } ; .
type birdToken struct {
	text string
	str  bool
}

// birdTokens lexes bird.conf as BIRD 2 does: '#' to the end of the line is
// a comment, a string is '"', anything but '"' and a line break, '"'.
func birdTokens(t *testing.T, data []byte) []birdToken {
	t.Helper()
	var out []birdToken
	s := string(data)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"':
			j := strings.IndexAny(s[i+1:], "\"\n")
			if j < 0 || s[i+1+j] != '"' {
				t.Fatalf("unterminated string at %q", s[i:min(len(s), i+40)])
			}
			out = append(out, birdToken{text: s[i+1 : i+1+j], str: true})
			i += j + 2
		case c == '{' || c == '}' || c == ';' || c == ',':
			out = append(out, birdToken{text: string(c)})
			i++
		case c < 0x20 || c == 0x7f:
			t.Fatalf("control character %#x in bird.conf", c)
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n#\"{};,", rune(s[j])) && s[j] >= 0x20 {
				j++
			}
			out = append(out, birdToken{text: s[i:j]})
			i = j
		}
	}
	return out
}

// birdStatement is a statement: its words up to ';' or a block.
type birdStatement struct {
	words []birdToken
	block []birdStatement
}

func birdParse(t *testing.T, toks []birdToken, i int, depth int) ([]birdStatement, int) {
	t.Helper()
	var out []birdStatement
	var cur birdStatement
	for i < len(toks) {
		tk := toks[i]
		i++
		switch {
		case !tk.str && tk.text == ";":
			if len(cur.words) > 0 || cur.block != nil {
				out = append(out, cur)
			}
			cur = birdStatement{}
		case !tk.str && tk.text == "{":
			var blk []birdStatement
			blk, i = birdParse(t, toks, i, depth+1)
			cur.block = blk
			if cur.block == nil {
				cur.block = []birdStatement{}
			}
			// A block ends a statement; an optional ';' follows.
			if i < len(toks) && toks[i].text == ";" && !toks[i].str {
				i++
			}
			out = append(out, cur)
			cur = birdStatement{}
		case !tk.str && tk.text == "}":
			if depth == 0 {
				t.Fatal("unbalanced } in bird.conf")
			}
			if len(cur.words) > 0 {
				t.Fatalf("statement %v without ;", cur.words)
			}
			return out, i
		default:
			cur.words = append(cur.words, tk)
		}
	}
	if depth > 0 {
		t.Fatal("unbalanced { in bird.conf")
	}
	if len(cur.words) > 0 {
		t.Fatalf("statement %v without ;", cur.words)
	}
	return out, i
}

func isSymbol(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func checkBird(t *testing.T, n *model.Node, conf []byte) {
	t.Helper()
	top, _ := birdParse(t, birdTokens(t, conf), 0, 0)
	var got []string
	var bgp []birdStatement
	for _, st := range top {
		var w []string
		for _, tk := range st.words {
			if tk.str {
				t.Fatalf("string %q at the top level", tk.text)
			}
			w = append(w, tk.text)
		}
		switch {
		case len(w) == 3 && w[0] == "log" && w[1] == "syslog" && w[2] == "all" && st.block == nil:
			got = append(got, "log")
		case len(w) == 3 && w[0] == "router" && w[1] == "id" && w[2] == n.RouterID.String() && st.block == nil:
			got = append(got, "router id")
		case len(w) == 2 && w[0] == "protocol" && st.block != nil && (w[1] == "device" || w[1] == "bfd"):
			got = append(got, "protocol "+w[1])
		case len(w) == 3 && w[0] == "protocol" && w[1] == "static" && st.block != nil && (w[2] == bird.Protocol4 || w[2] == bird.Protocol6):
			got = append(got, "protocol static "+w[2])
		case len(w) == 2 && w[0] == "filter" && st.block != nil && strings.HasPrefix(w[1], "lbctl_export"):
			got = append(got, "filter "+w[1])
		case len(w) == 3 && w[0] == "protocol" && w[1] == "bgp" && st.block != nil && isSymbol(w[2]):
			got = append(got, "protocol bgp")
			bgp = append(bgp, st)
		default:
			t.Fatalf("unexpected top-level statement %q", w)
		}
	}
	want := []string{"log", "router id", "protocol device", "protocol static vips4", "protocol static vips6"}
	if n.BFD {
		want = append(want, "protocol bfd")
	}
	kinds := map[bool]bool{}
	for _, rr := range n.RouteReflectors {
		kinds[rr.ASN == n.ASN] = true
	}
	for _, ibgp := range []bool{true, false} {
		if kinds[ibgp] {
			want = append(want, "filter "+bird.FilterName(false, ibgp), "filter "+bird.FilterName(true, ibgp))
		}
	}
	for range n.RouteReflectors {
		want = append(want, "protocol bgp")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("bird.conf of %q: statements %q, want %q", n.Hostname, got, want)
	}
	seen := map[string]bool{}
	for i, st := range bgp {
		rr := n.RouteReflectors[i]
		name := st.words[2].text
		if seen[name] {
			t.Fatalf("protocol %s twice", name)
		}
		seen[name] = true
		var desc []string
		for _, s := range st.block {
			if len(s.words) > 0 && s.words[0].text == "description" {
				if len(s.words) != 2 || !s.words[1].str {
					t.Fatalf("description %v", s.words)
				}
				desc = append(desc, s.words[1].text)
			}
			if len(s.words) > 0 && s.words[0].text == "neighbor" && (len(s.words) != 4 || s.words[1].text != rr.Address.String()) {
				t.Fatalf("protocol %s: neighbor %v, want %s", name, s.words, rr.Address)
			}
		}
		kind := "iBGP"
		if rr.ASN != n.ASN {
			kind = "eBGP"
		}
		if len(desc) != 1 || desc[0] != fmt.Sprintf("route reflector %s (%s)", rr.Name, kind) {
			t.Fatalf("protocol %s: descriptions %q for %s", name, desc, rr.Name)
		}
	}
}
