package model

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The grammar of every string of the resolved model. Renderers write these
// strings into haproxy.cfg, bird.conf, nftables, Icinga2 and file paths;
// a string that breaks its grammar could start a new line, section or
// keyword there, or name a path outside its directory. Site.Validate checks
// every string once, when the build resolves intents and when a node
// decodes a bundle, before anything is rendered or written. The table in
// docs/intents.md ("Grammar of the resolved model") lists the kinds.

// Limits of the string kinds, in bytes.
const (
	maxName     = 128
	maxHostname = 253
	maxPath     = 1024
	maxURL      = 2048
	maxText     = 256
)

// FieldError is one field of the resolved model that breaks its grammar.
// Path is the field's JSON path, e.g. "services[3].backend.check.method".
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// ErrGrammar is wrapped by every FieldError's Err.
var ErrGrammar = errors.New("not allowed in the resolved model")

// grammarError is a broken grammar; errors.Is(err, ErrGrammar) holds.
type grammarError string

func (e grammarError) Error() string        { return string(e) }
func (e grammarError) Is(target error) bool { return target == ErrGrammar }

func grammarErr(format string, a ...any) error {
	return grammarError(fmt.Sprintf(format, a...))
}

// checkChars refuses invalid UTF-8, control characters (C0, DEL, C1),
// Unicode line and paragraph separators and format characters (bidi
// overrides, zero-width characters), and values longer than max bytes.
func checkChars(s string, max int) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return grammarErr("control character U+%04X", c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return grammarErr("invalid UTF-8 at byte %d", i)
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return grammarErr("control or format character U+%04X", r)
		}
		i += n
	}
	if len(s) > max {
		return grammarErr("%d bytes, longer than %d", len(s), max)
	}
	return nil
}

// checkASCII checks checkChars and that every byte is in allowed (a
// 128-entry table of printable ASCII).
func checkASCII(s string, max int, allowed *[128]bool, what string) error {
	if err := checkChars(s, max); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || !allowed[c] {
			r, _ := utf8.DecodeRuneInString(s[i:])
			return grammarErr("character %q (U+%04X) not allowed in %s", r, r, what)
		}
	}
	return nil
}

// charset returns the table of the characters of groups: a group of three
// bytes with '-' in the middle ("a-z") is a range, any other group lists
// its characters.
func charset(groups ...string) *[128]bool {
	var t [128]bool
	for _, g := range groups {
		if len(g) == 3 && g[1] == '-' {
			for c := g[0]; c <= g[2]; c++ {
				t[c] = true
			}
			continue
		}
		for i := 0; i < len(g); i++ {
			t[g[i]] = true
		}
	}
	return &t
}

var (
	nameChars = charset("A-Z", "a-z", "0-9", "._-")
	// pathChars are RFC 3986 path characters without the ones HAProxy's
	// or BIRD's parsers treat specially (quotes, '#', '$', '\\', braces,
	// blanks): unreserved, '%' for percent-encoding, and a safe subset
	// of sub-delims.
	pathChars = charset("A-Z", "a-z", "0-9", "-._~", "%/!&()*+,;=:@")
	// queryChars are pathChars and '?' (a check may request a query).
	queryChars = charset("A-Z", "a-z", "0-9", "-._~", "%/!&()*+,;=:@?")
	// urlChars are the printable ASCII characters a URL may hold; the
	// renderer quotes the value (redirect targets).
	urlChars  = charset("A-Z", "a-z", "0-9", "-._~", "%/!&()*+,;=:@?", "#[]'$")
	tokenUC   = charset("A-Z")
	emailChar = charset("A-Z", "a-z", "0-9", "._%+-@")
	treeChars = charset("A-Z", "a-z", "0-9", "._-/")
	digitsX   = charset("0-9", "x", ", ")
)

// Name: an identifier, [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 bytes. Used
// for the site name, VIP names (a directory and systemd instance name),
// certificate names (a file name), backend groups, route reflector names,
// server names (or an IP address) and owners.
func checkName(s string) error {
	if s == "" {
		return grammarErr("empty")
	}
	if err := checkASCII(s, maxName, nameChars, "a name ([A-Za-z0-9._-])"); err != nil {
		return err
	}
	if !isAlnum(s[0]) {
		return grammarErr("%q: a name starts with a letter or digit", s)
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Hostname: DNS labels of [A-Za-z0-9_-] (not starting or ending with
// '-'), 1 to 63 bytes each, joined by '.', at most 253 bytes, no trailing
// dot.
func checkHostname(s string) error {
	if err := checkChars(s, maxHostname); err != nil {
		return err
	}
	if s == "" {
		return grammarErr("empty")
	}
	for rest := s; ; {
		label, more, found := strings.Cut(rest, ".")
		if len(label) == 0 || len(label) > 63 {
			return grammarErr("%q: a host name has labels of 1 to 63 characters", s)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return grammarErr("%q: a label of a host name neither starts nor ends with '-'", s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isAlnum(c) && c != '-' && c != '_' {
				r, _ := utf8.DecodeRuneInString(label[i:])
				return grammarErr("character %q (U+%04X) not allowed in a host name", r, r)
			}
		}
		if !found {
			break
		}
		rest = more
	}
	return nil
}

// TreePath: a relative slash-separated path of name segments (no empty,
// "." or ".." segment, none starting with '.'), at most 1024 bytes. Used
// for service names and the source files of services and node profiles.
func checkTreePath(s string) error {
	if s == "" {
		return grammarErr("empty")
	}
	if err := checkASCII(s, maxPath, treeChars, "a tree path ([A-Za-z0-9._-/])"); err != nil {
		return err
	}
	for rest := s; ; {
		seg, more, found := strings.Cut(rest, "/")
		if seg == "" || seg[0] == '.' {
			return grammarErr("%q: a tree path has no empty segment and none starting with '.'", s)
		}
		if !found {
			break
		}
		rest = more
	}
	return nil
}

// URIPath: '/' then RFC 3986 path characters without quotes, '#', '$',
// '\\', braces or blanks (query allowed when query is true).
func checkURIPath(s string, query bool) error {
	if s == "" || s[0] != '/' {
		return grammarErr("%q: a path starts with /", s)
	}
	set := pathChars
	if query {
		set = queryChars
	}
	return checkASCII(s, maxPath, set, "a URI path")
}

// RedirectTarget: an absolute path or an http(s) URL of printable ASCII
// without blanks, quotes '"', backslashes or braces, at most 2048 bytes.
// The HAProxy renderer quotes it.
func checkRedirectTarget(s string) error {
	if err := checkASCII(s, maxURL, urlChars, "a redirect target"); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(s, "/"), strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "http://"):
		return nil
	}
	return grammarErr("%q: a redirect target is a path starting with / or an http(s) URL", s)
}

// Method: an HTTP method, 1 to 16 upper-case letters.
func checkMethod(s string) error {
	if s == "" {
		return grammarErr("empty")
	}
	return checkASCII(s, 16, tokenUC, "an HTTP method (A-Z)")
}

// checkEnum refuses a value outside values ("" allowed when empty is true).
func checkEnum(s string, empty bool, values ...string) error {
	if s == "" && empty {
		return nil
	}
	for _, v := range values {
		if s == v {
			return nil
		}
	}
	if err := checkChars(s, maxText); err != nil {
		return err
	}
	return grammarErr("%q: want one of %s", s, strings.Join(values, ", "))
}

// checkAddr: an IP address in canonical form, without zone.
func checkAddr(s string) error {
	if err := checkChars(s, 64); err != nil {
		return err
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return grammarErr("%q: not an IP address", s)
	}
	return nil
}

// checkIP: a typed IP address is set and has no zone (netip.Addr decodes
// a zone as any text after '%').
func checkIP(a netip.Addr) error {
	if !a.IsValid() || a.Zone() != "" {
		return grammarErr("%q: not an IP address", a.String())
	}
	return nil
}

// PlainAddr reports whether a is an address a VIP can have: set, no zone,
// and IPv4 or IPv6 but not an IPv4-mapped IPv6 address. Renderers check
// it on models Validate has not seen.
func PlainAddr(a netip.Addr) bool { return a.IsValid() && a.Zone() == "" && !a.Is4In6() }

// checkIPPrefix: a typed IP prefix is set (a netip.Prefix has no zone).
func checkIPPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return grammarErr("%q: not an IP prefix", p.String())
	}
	return nil
}

// checkStatus: HTTP status expressions like "200" or "2xx", separated by
// commas; empty allowed.
func checkStatus(s string) error {
	if s == "" {
		return nil
	}
	if err := checkASCII(s, 64, digitsX, "a status expression"); err != nil {
		return err
	}
	for rest := s; ; {
		part, more, found := strings.Cut(rest, ",")
		part = strings.TrimSpace(part)
		if len(part) != 3 || part[0] < '1' || part[0] > '5' {
			return grammarErr("%q: status codes like 200 or 2xx", s)
		}
		if !found {
			break
		}
		rest = more
	}
	return nil
}

// checkEmail: a bare e-mail address of [A-Za-z0-9._%+-] around one '@'.
func checkEmail(s string) error {
	if err := checkASCII(s, maxHostname, emailChar, "an e-mail address"); err != nil {
		return err
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.Contains(domain, "@") || checkHostname(domain) != nil {
		return grammarErr("%q: not an e-mail address", s)
	}
	return nil
}

// checkInterface: a Linux interface name (1 to 15 bytes of [A-Za-z0-9._-],
// not "." or "..").
func checkInterface(s string) error {
	if err := checkASCII(s, 15, nameChars, "an interface name"); err != nil {
		return err
	}
	if s == "" || s == "." || s == ".." {
		return grammarErr("%q: not an interface name", s)
	}
	return nil
}

// checkServerName: a name, or an IP address (literal backend hosts).
func checkServerName(s string) error {
	err := checkName(s)
	if err != nil && strings.Contains(s, ":") && checkAddr(s) == nil {
		return nil
	}
	return err
}

// validator collects the field errors of a site.
type validator struct {
	errs []error
}

// check records err, if any, at the field whose path is the
// concatenation of path: the path is only built for an error (a valid
// model allocates nothing here).
func (v *validator) check(err error, path ...string) {
	if err != nil {
		v.errs = append(v.errs, &FieldError{Path: strings.Join(path, ""), Err: err})
	}
}

func idx(prefix string, i int) string { return prefix + "[" + strconv.Itoa(i) + "]" }

// Validate checks every string of the site against its grammar, and the
// ranges of the numbers the renderers write. The error joins one
// FieldError per field, in the order of the fields.
func (s *Site) Validate() error {
	v := &validator{}
	v.check(checkName(s.Name), "name")
	nodes := make(map[string]bool, len(s.Nodes))
	for _, n := range s.Nodes {
		nodes[n.Hostname] = true
	}
	for i := range s.Services {
		v.service(idx("services", i), &s.Services[i])
		v.routeAttrs(idx("services", i)+".bgp", &s.Services[i].BGP, nodes)
	}
	for i := range s.VIPs {
		v.vip(idx("vips", i), &s.VIPs[i])
		v.routeAttrs(idx("vips", i)+".bgp", &s.VIPs[i].BGP, nodes)
	}
	for i := range s.Nodes {
		v.node(idx("nodes", i), &s.Nodes[i])
	}
	for i, m := range s.Monitoring {
		v.check(checkIPPrefix(m), idx("monitoring", i))
	}
	// Names that become paths, systemd instances or BIRD protocols are
	// unique.
	unique(v, len(s.Services), func(i int) string { return s.Services[i].Name }, "services", ".name")
	unique(v, len(s.VIPs), func(i int) string { return s.VIPs[i].Name }, "vips", ".name")
	unique(v, len(s.Nodes), func(i int) string { return s.Nodes[i].Hostname }, "nodes", ".hostname")
	for i := range s.Nodes {
		rrs := s.Nodes[i].RouteReflectors
		unique(v, len(rrs), func(j int) string { return rrs[j].Name }, idx("nodes", i)+".route_reflectors", ".name")
	}
	return errors.Join(v.errs...)
}

// unique reports the elements of a list whose name repeats an earlier one.
func unique(v *validator, n int, name func(int) string, list, field string) {
	if n < 2 {
		return
	}
	first := make(map[string]int, n)
	for i := range n {
		k := name(i)
		if j, ok := first[k]; ok {
			v.check(grammarErr("%q repeats %s[%d]%s", k, list, j, field), list, "[", strconv.Itoa(i), "]", field)
			continue
		}
		first[k] = i
	}
}

func checkPort(p int, zero bool) error {
	if (p == 0 && zero) || (p >= 1 && p <= 65535) {
		return nil
	}
	return grammarErr("port %d out of range", p)
}

func checkNonNegative(n int) error {
	if n < 0 || n > 1<<31-1 {
		return grammarErr("%d out of range", n)
	}
	return nil
}

func (v *validator) service(p string, s *Service) {
	v.check(checkTreePath(s.Name), p, ".name")
	if s.Source != "" {
		v.check(checkTreePath(s.Source), p, ".source")
	}
	v.check(checkHostname(s.FQDN), p, ".fqdn")
	for i, a := range s.Aliases {
		v.check(checkHostname(a), p, ".aliases", "[", strconv.Itoa(i), "]")
	}
	v.check(checkEnum(s.Mode, false, ModeHTTP, ModeTCP), p, ".mode")
	v.check(checkName(s.VIP), p, ".vip")
	for i, a := range s.Addresses {
		v.check(checkIP(a), p, ".addresses", "[", strconv.Itoa(i), "]")
	}
	for i, l := range s.Listeners {
		v.check(checkPort(l.Port, false), p, ".listeners[", strconv.Itoa(i), "].port")
		v.check(checkEnum(l.Action, false, ActionServe, ActionRedirectHTTPS), p, ".listeners[", strconv.Itoa(i), "].action")
		v.check(checkPort(l.BackendPort, true), p, ".listeners[", strconv.Itoa(i), "].backend_port")
	}
	if t := s.TLS; t != nil {
		v.check(checkName(t.Certificate), p, ".tls.certificate")
		v.check(checkEnum(t.MinVersion, true, "1.2", "1.3"), p, ".tls.min_version")
		v.check(checkEnum(t.CipherProfile, true, "modern", "intermediate", "old"), p, ".tls.cipher_profile")
		v.check(checkNonNegative(t.HSTSMaxAge), p, ".tls.hsts_max_age")
	}
	v.backend(p+".backend", &s.Backend)
	for i, r := range s.Redirects {
		v.check(checkURIPath(r.From, false), p, ".redirects[", strconv.Itoa(i), "].from")
		v.check(checkRedirectTarget(r.To), p, ".redirects[", strconv.Itoa(i), "].to")
		switch r.Code {
		case 301, 302, 303, 307, 308:
		default:
			v.check(grammarErr("%d: want 301, 302, 303, 307 or 308", r.Code), p, ".redirects[", strconv.Itoa(i), "].code")
		}
	}
	for i, a := range s.AllowedSources {
		v.check(checkIPPrefix(a), p, ".allowed_sources", "[", strconv.Itoa(i), "]")
	}
	for i, a := range s.InterceptPrefixes {
		v.check(checkIPPrefix(a), p, ".intercept_prefixes", "[", strconv.Itoa(i), "]")
	}
	t := s.Timeouts
	v.check(checkNonNegative(t.ConnectMS), p, ".timeouts.connect_ms")
	v.check(checkNonNegative(t.ClientMS), p, ".timeouts.client_ms")
	v.check(checkNonNegative(t.ServerMS), p, ".timeouts.server_ms")
	v.check(checkNonNegative(t.TunnelMS), p, ".timeouts.tunnel_ms")
	if s.Owner != "" {
		v.check(checkName(s.Owner), p, ".owner")
	}
	for i, c := range s.Contacts {
		v.check(checkEmail(c), p, ".contacts", "[", strconv.Itoa(i), "]")
	}
}

func (v *validator) backend(p string, b *Backend) {
	if b.Group != "" {
		v.check(checkName(b.Group), p, ".group")
	}
	for i, srv := range b.Servers {
		v.check(checkServerName(srv.Name), p, ".servers[", strconv.Itoa(i), "].name")
		v.check(checkIP(srv.Address), p, ".servers[", strconv.Itoa(i), "].address")
	}
	v.check(checkPort(b.Port, true), p, ".port")
	if b.Software != "" {
		v.check(checkName(b.Software), p, ".software")
	}
	v.check(checkEnum(b.Balance, true, "roundrobin", "leastconn", "source"), p, ".balance")
	v.check(checkEnum(b.Proxy, true, ProxyNone, ProxyV1, ProxyV2), p, ".proxy")
	v.check(checkNonNegative(b.MinUp), p, ".min_up")
	c := &b.Check
	v.check(checkEnum(c.Type, true, CheckHTTP, CheckTCP, CheckSMTP, CheckLDAP, CheckNone), p, ".check.type")
	if c.Method != "" {
		v.check(checkMethod(c.Method), p, ".check.method")
	}
	if c.Path != "" {
		v.check(checkURIPath(c.Path, true), p, ".check.path")
	}
	if c.Host != "" {
		v.check(checkHostname(c.Host), p, ".check.host")
	}
	v.check(checkStatus(c.ExpectStatus), p, ".check.expect_status")
	v.check(checkNonNegative(c.IntervalMS), p, ".check.interval_ms")
	v.check(checkNonNegative(c.Rise), p, ".check.rise")
	v.check(checkNonNegative(c.Fall), p, ".check.fall")
}

func (v *validator) vip(p string, x *VIP) {
	v.check(checkName(x.Name), p, ".name")
	for i, a := range x.Addresses {
		v.check(checkIP(a), p, ".addresses", "[", strconv.Itoa(i), "]")
	}
	for i, s := range x.Services {
		v.check(checkTreePath(s), p, ".services", "[", strconv.Itoa(i), "]")
	}
	for i, port := range x.Ports {
		v.check(checkPort(port.Port, false), p, ".ports[", strconv.Itoa(i), "].port")
		v.check(checkEnum(port.Mode, false, ModeHTTP, ModeTCP), p, ".ports[", strconv.Itoa(i), "].mode")
		for j, s := range port.Services {
			v.check(checkTreePath(s), p, ".ports[", strconv.Itoa(i), "].services[", strconv.Itoa(j), "]")
		}
	}
}

func (v *validator) node(p string, n *Node) {
	v.check(checkHostname(n.Hostname), p, ".hostname")
	v.check(checkIP(n.RouterID), p, ".router_id")
	for i := range n.RouteReflectors {
		v.peer(idx(p+".route_reflectors", i), &n.RouteReflectors[i])
	}
	v.nodeBGP(p+".bgp", &n.BGP)
	if n.VIPInterface != "" {
		v.check(checkInterface(n.VIPInterface), p, ".vip_interface")
	}
	for i, a := range n.Addresses {
		v.check(checkIP(a), p, ".addresses", "[", strconv.Itoa(i), "]")
	}
	if n.Source != "" {
		v.check(checkTreePath(n.Source), p, ".source")
	}
}
