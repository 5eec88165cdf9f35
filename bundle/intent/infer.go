package intent

import (
	"fmt"
	"net/mail"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
)

// software is what a backend's server software implies (see docs/intents.md,
// "Inference").
type software struct {
	mode string
	// port and tlsPort are the default backend ports without and with
	// backend TLS; 0 means "the first listener's port".
	port, tlsPort int
	check         string
	// listeners are the default ports in mode tcp.
	listeners []int
}

var softwares = map[string]software{
	"apache2": {mode: model.ModeHTTP, port: 80, tlsPort: 443, check: model.CheckHTTP},
	"nginx":   {mode: model.ModeHTTP, port: 80, tlsPort: 443, check: model.CheckHTTP},
	"iis":     {mode: model.ModeHTTP, port: 80, tlsPort: 443, check: model.CheckHTTP},
	"tomcat":  {mode: model.ModeHTTP, port: 8080, tlsPort: 8443, check: model.CheckHTTP},
	"postfix": {mode: model.ModeTCP, port: 25, tlsPort: 25, check: model.CheckSMTP, listeners: []int{25, 465, 587}},
	"dovecot": {mode: model.ModeTCP, port: 143, tlsPort: 143, check: model.CheckTCP, listeners: []int{143, 993}},
	"slapd":   {mode: model.ModeTCP, port: 389, tlsPort: 389, check: model.CheckLDAP, listeners: []int{389, 636}},
	"generic": {mode: "", port: 0, check: model.CheckTCP},
}

// implicitTLSPorts are the ports whose protocol starts with a TLS handshake:
// a listener on one of them terminates TLS when the service enables TLS.
var implicitTLSPorts = []int{443, 465, 636, 993, 995, 8443}

// Defaults that do not depend on software.
const (
	defaultCheckInterval = 2 * time.Second
	defaultRise          = 2
	defaultFall          = 3
	defaultMinVersion    = "1.2"
	defaultCiphers       = "intermediate"
	defaultRedirectCode  = 301
)

var (
	httpTimeouts = model.Timeouts{ConnectMS: 5000, ClientMS: 30_000, ServerMS: 30_000, TunnelMS: 3_600_000}
	tcpTimeouts  = model.Timeouts{ConnectMS: 5000, ClientMS: 3_600_000, ServerMS: 3_600_000}
)

var (
	certNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	statusRE   = regexp.MustCompile(`^[1-5][0-9x][0-9x]$`)
)

// validHostname reports whether s is a DNS host name of at least two
// labels (letters, digits, '-' inside a label, '_' for service labels), no
// trailing dot.
func validHostname(s string) bool {
	return len(s) <= 253 && strings.Contains(s, ".") && validLabels(s)
}

// validLabels checks the labels of a host name (one label is fine).
func validLabels(s string) bool {
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// canonicalName lower-cases a host name and drops a trailing dot.
func canonicalName(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// infer turns a decoded service, the addresses of its FQDN and its resolved
// servers into the explicit model.Service. It is pure: every rule of the
// inference table in docs/intents.md is here, except the rules about a
// whole VIP: I26 (a VIP's HAProxy hard-stop-after), the HAProxy
// renderer's, and I27 (vipThreads).
func infer(s *Service, addrs []netip.Addr, servers []model.Server, errs *errList) model.Service {
	out := model.Service{
		Name:   s.Name,
		Source: s.Source,
		FQDN:   canonicalName(s.FQDN),
		Owner:  s.Owner,
	}
	if !validHostname(out.FQDN) {
		errs.add(s.at("fqdn"), "fqdn %s is not a valid host name", short(s.FQDN))
	}
	for i, a := range s.Aliases {
		a = canonicalName(a)
		if !validHostname(a) {
			errs.add(s.at(fmt.Sprintf("aliases.%d", i)), "alias %s is not a valid host name", short(s.Aliases[i]))
			continue
		}
		if a == out.FQDN {
			errs.add(s.at(fmt.Sprintf("aliases.%d", i)), "alias %s repeats the fqdn", short(s.Aliases[i]))
			continue
		}
		out.Aliases = append(out.Aliases, a)
	}
	slices.Sort(out.Aliases)
	if n := len(out.Aliases); n != len(slices.Compact(out.Aliases)) {
		errs.add(s.at("aliases"), "aliases repeat a name")
	}
	out.Aliases = slices.Compact(out.Aliases)

	// Software and mode.
	b := s.Backend
	sw := b.Software
	if sw == "" {
		sw = "generic"
	}
	soft := softwares[sw]
	out.Mode = s.Mode
	if out.Mode == "" {
		out.Mode = soft.mode
		if out.Mode == "" {
			out.Mode = model.ModeHTTP
		}
	} else if soft.mode != "" && soft.mode != out.Mode {
		errs.add(s.at("mode"), "mode %s does not fit backend.software %s (mode %s)", out.Mode, sw, soft.mode)
	}
	http := out.Mode == model.ModeHTTP

	// Addresses.
	has4, has6 := false, false
	for _, a := range addrs {
		out.Addresses = append(out.Addresses, a.String())
		has4 = has4 || a.Is4()
		has6 = has6 || a.Is6()
	}

	// TLS termination.
	tlsOn := s.TLS.Enabled != nil && *s.TLS.Enabled
	tlsOff := s.TLS.Enabled != nil && !*s.TLS.Enabled
	for i, l := range s.Listeners {
		if l.TLS != nil && *l.TLS {
			if tlsOff {
				errs.add(s.at(fmt.Sprintf("listeners.%d.tls", i)), "listener %d terminates TLS but tls.enabled is false", l.Port)
			}
			tlsOn = true
		}
	}
	if !tlsOn {
		// TLS settings the service file writes without TLS would
		// promise what nothing does (port 80 keeps serving plain HTTP
		// despite tls.redirect). Inherited ones are a subtree's
		// defaults for the services that do enable TLS.
		for _, f := range []string{"certificate", "redirect", "hsts", "min_version", "ciphers"} {
			if s.ownSets("tls." + f) {
				errs.add(s.at("tls."+f), "tls.%s has no effect: the service does not terminate TLS (enable tls, or remove tls.%s)", f, f)
			}
		}
	}
	redirect := false
	if tlsOn {
		t := &model.TLS{
			Certificate:   s.TLS.Certificate,
			MinVersion:    s.TLS.MinVersion,
			CipherProfile: s.TLS.Ciphers,
			HSTSMaxAge:    s.TLS.HSTS,
		}
		if t.Certificate == "" {
			t.Certificate = out.FQDN
		} else if !certNameRE.MatchString(t.Certificate) {
			errs.add(s.at("tls.certificate"), "certificate %s: a name of letters, digits, '.', '_' and '-'", short(t.Certificate))
		}
		if t.MinVersion == "" {
			t.MinVersion = defaultMinVersion
		}
		if t.CipherProfile == "" {
			t.CipherProfile = defaultCiphers
		}
		if http {
			redirect = s.TLS.Redirect == nil || *s.TLS.Redirect
			t.RedirectHTTP = redirect
		} else {
			if s.TLS.Redirect != nil && *s.TLS.Redirect {
				errs.add(s.at("tls.redirect"), "tls.redirect needs mode http")
			}
			if s.TLS.HSTS != 0 {
				errs.add(s.at("tls.hsts"), "tls.hsts needs mode http")
			}
		}
		out.TLS = t
	}

	// Backend port.
	backendTLS := b.TLS != nil && *b.TLS
	port := b.Port
	if port == 0 {
		port = soft.port
		if backendTLS {
			port = soft.tlsPort
		}
		if port == 0 && http {
			port = 80
			if backendTLS {
				port = 443
			}
		}
	}

	// Listeners.
	type lis struct {
		l    Listener
		path string
	}
	var ls []lis
	if len(s.Listeners) > 0 {
		for i, l := range s.Listeners {
			ls = append(ls, lis{l, fmt.Sprintf("listeners.%d", i)})
		}
	} else {
		var ports []int
		switch {
		case http && tlsOn:
			ports = []int{80, 443}
		case http:
			ports = []int{80}
		default:
			ports = soft.listeners
			if len(ports) == 0 {
				errs.add(s.at("backend"), "mode tcp with backend.software %s: listeners are required", sw)
			}
		}
		for _, p := range ports {
			ls = append(ls, lis{Listener{Port: p}, "listeners"})
		}
	}
	if port == 0 && len(ls) > 0 {
		port = ls[0].l.Port
	}
	seenPort := map[int]bool{}
	anyTLS := false
	for _, x := range ls {
		l := x.l
		if seenPort[l.Port] {
			errs.add(s.at(x.path+".port"), "listener port %d repeated", l.Port)
			continue
		}
		seenPort[l.Port] = true
		ml := model.Listener{Port: l.Port, Action: model.ActionServe}
		if l.TLS != nil {
			ml.TLS = *l.TLS
		} else {
			ml.TLS = tlsOn && slices.Contains(implicitTLSPorts, l.Port)
		}
		anyTLS = anyTLS || ml.TLS
		ml.IPv4 = has4 && (l.IPv4 == nil || *l.IPv4)
		ml.IPv6 = has6 && (l.IPv6 == nil || *l.IPv6)
		if l.IPv4 != nil && *l.IPv4 && !has4 && len(addrs) > 0 {
			errs.add(s.at(x.path+".ipv4"), "listener %d: ipv4 requested but %s has no A record", l.Port, out.FQDN)
		}
		if l.IPv6 != nil && *l.IPv6 && !has6 && len(addrs) > 0 {
			errs.add(s.at(x.path+".ipv6"), "listener %d: ipv6 requested but %s has no AAAA record", l.Port, out.FQDN)
		}
		if !ml.IPv4 && !ml.IPv6 && len(addrs) > 0 {
			errs.add(s.at(x.path), "listener %d listens on no address family", l.Port)
		}
		switch {
		case http && !ml.TLS && redirect:
			ml.Action = model.ActionRedirectHTTPS
			if l.BackendPort != 0 {
				errs.add(s.at(x.path+".backend_port"), "listener %d redirects to https: backend_port does not apply", l.Port)
			}
		case l.BackendPort != 0:
			ml.BackendPort = l.BackendPort
		case http || ml.TLS || b.Port != 0:
			ml.BackendPort = port
		default:
			ml.BackendPort = l.Port
		}
		out.Listeners = append(out.Listeners, ml)
	}
	slices.SortFunc(out.Listeners, func(a, b model.Listener) int { return a.Port - b.Port })
	if tlsOn && !anyTLS && len(ls) > 0 {
		errs.add(s.at("tls"), "tls is enabled but no listener terminates it: add port 443 (or mark a listener tls: true)")
	}

	// Backend.
	mb := model.Backend{
		Group:    b.Group,
		Servers:  servers,
		Port:     port,
		Software: sw,
		Balance:  b.Balance,
		Proxy:    b.Proxy,
		TLS:      backendTLS,
		MinUp:    b.MinUp,
	}
	if mb.Servers == nil {
		mb.Servers = []model.Server{}
	}
	if mb.Balance == "" {
		mb.Balance = "roundrobin"
		if !http {
			mb.Balance = "leastconn"
		}
	}
	if mb.Proxy == "" {
		mb.Proxy = model.ProxyNone
	}
	switch {
	case b.ForwardFor != nil && *b.ForwardFor && !http:
		errs.add(s.at("backend.forward_for"), "backend.forward_for needs mode http")
	case b.ForwardFor != nil:
		mb.ForwardFor = *b.ForwardFor
	default:
		mb.ForwardFor = http && mb.Proxy == model.ProxyNone
	}
	if mb.MinUp == 0 {
		mb.MinUp = 1
	}
	applyServerSettings(s, &mb, b.Servers, errs)
	if len(servers) > 0 && mb.MinUp > len(servers) {
		errs.add(s.at("backend.min_up"), "backend.min_up %d exceeds the %d servers", mb.MinUp, len(servers))
	} else if enabled := enabledServers(mb.Servers); len(servers) > 0 && mb.MinUp > enabled {
		errs.add(s.at("backend.min_up"), "backend.min_up %d exceeds the %d servers not disabled", mb.MinUp, enabled)
	}
	mb.Check = inferCheck(s, soft, out.FQDN, errs)
	if mb.Check.Type == model.CheckHTTP && !http && s.Backend.Check.Type == "" {
		mb.Check = model.Check{Type: model.CheckTCP, IntervalMS: mb.Check.IntervalMS, Rise: mb.Check.Rise, Fall: mb.Check.Fall}
	}
	out.Backend = mb

	// Redirects.
	seenFrom := map[string]bool{}
	for i, r := range s.Redirects {
		p := fmt.Sprintf("redirects.%d", i)
		if !http {
			errs.add(s.at(p), "redirects need mode http")
			break
		}
		if !strings.HasPrefix(r.From, "/") {
			errs.add(s.at(p+".from"), "redirect from %s: a path starting with /", short(r.From))
		}
		if seenFrom[r.From] {
			errs.add(s.at(p+".from"), "redirect from %s repeated", short(r.From))
		}
		seenFrom[r.From] = true
		code := r.Code
		if code == 0 {
			code = defaultRedirectCode
		}
		if !slices.Contains([]int{301, 302, 303, 307, 308}, code) {
			errs.add(s.at(p+".code"), "redirect code %d: one of 301, 302, 303, 307, 308", code)
		}
		out.Redirects = append(out.Redirects, model.Redirect{From: r.From, To: r.To, Code: code})
	}
	slices.SortFunc(out.Redirects, func(a, b model.Redirect) int { return strings.Compare(a.From, b.From) })

	// Client ACL.
	out.AllowedSources = prefixStrings(s.Allow)

	// Transparent proxying.
	out.Transparent = s.Transparent.Enabled != nil && *s.Transparent.Enabled
	if len(s.Transparent.Intercept) > 0 && !out.Transparent {
		errs.add(s.at("transparent.intercept"), "transparent.intercept needs transparent enabled")
	}
	if out.Transparent {
		out.InterceptPrefixes = prefixStrings(s.Transparent.Intercept)
	}

	// Timeouts.
	out.Timeouts = httpTimeouts
	if !http {
		out.Timeouts = tcpTimeouts
	}
	if d := s.Timeouts.Connect.MS(); d > 0 {
		out.Timeouts.ConnectMS = d
	}
	if d := s.Timeouts.Client.MS(); d > 0 {
		out.Timeouts.ClientMS = d
	}
	if d := s.Timeouts.Server.MS(); d > 0 {
		out.Timeouts.ServerMS = d
	}
	if d := s.Timeouts.Tunnel.MS(); d > 0 {
		out.Timeouts.TunnelMS = d
	}

	// Monitoring.
	for i, c := range s.Contacts {
		a, err := mail.ParseAddress(c)
		if err != nil || a.Name != "" || a.Address != c {
			errs.add(s.at(fmt.Sprintf("contacts.%d", i)), "contact %s is not an e-mail address", short(c))
			continue
		}
		out.Contacts = append(out.Contacts, c)
	}
	slices.Sort(out.Contacts)
	out.Contacts = slices.Compact(out.Contacts)
	return out
}

func inferCheck(s *Service, soft software, fqdn string, errs *errList) model.Check {
	c := s.Backend.Check
	out := model.Check{Type: c.Type, IntervalMS: c.Interval.MS(), Rise: c.Rise, Fall: c.Fall}
	if out.Type == "" {
		out.Type = soft.check
	}
	if out.IntervalMS == 0 {
		out.IntervalMS = int(defaultCheckInterval / time.Millisecond)
	}
	if out.Rise == 0 {
		out.Rise = defaultRise
	}
	if out.Fall == 0 {
		out.Fall = defaultFall
	}
	if out.Type != model.CheckHTTP {
		for _, f := range []string{"method", "path", "host", "expect"} {
			if lookup(s.src, "backend.check."+f) != nil {
				errs.add(s.at("backend.check."+f), "backend.check.%s applies to http checks only (check type is %s)", f, out.Type)
			}
		}
		if out.Type == model.CheckNone {
			return model.Check{Type: model.CheckNone}
		}
		return out
	}
	out.Method = c.Method
	if out.Method == "" {
		out.Method = "GET"
	}
	out.Path = c.Path
	if out.Path == "" {
		out.Path = "/"
	} else if !strings.HasPrefix(out.Path, "/") || strings.ContainsAny(out.Path, " \t\r\n") {
		errs.add(s.at("backend.check.path"), "backend.check.path %s: a path starting with / and without spaces", short(c.Path))
	}
	out.Host = c.Host
	if out.Host == "" {
		out.Host = fqdn
	} else if !validHostname(canonicalName(out.Host)) {
		errs.add(s.at("backend.check.host"), "backend.check.host %s is not a valid host name", short(c.Host))
	}
	out.ExpectStatus = c.Expect
	if out.ExpectStatus != "" && !statusRE.MatchString(out.ExpectStatus) {
		errs.add(s.at("backend.check.expect"), "backend.check.expect %s: a status like 200 or 2xx", short(c.Expect))
	}
	return out
}

// prefixStrings returns the canonical, sorted, distinct prefixes of ps,
// leaving out those that did not decode (already reported at their line).
func prefixStrings(ps []Prefix) []string {
	sorted := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if p.IsValid() {
			sorted = append(sorted, p.Prefix)
		}
	}
	if len(sorted) == 0 {
		return nil
	}
	slices.SortFunc(sorted, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	sorted = slices.Compact(sorted)
	out := make([]string, len(sorted))
	for i, p := range sorted {
		out[i] = p.String()
	}
	return out
}

// ownAt is at for what the service file must change: the path's position
// if the service file itself sets it, else the start of the service file
// (not the defaults file that set part of it).
func (s *Service) ownAt(p string) Pos {
	if pos := s.at(p); s.file == "" || pos.File == s.file {
		return pos
	}
	return Pos{File: s.file, Line: 1, Col: 1}
}

// ownSets reports whether the service file itself sets the dotted path.
func (s *Service) ownSets(p string) bool {
	k := lookup(s.src, p)
	return k != nil && (s.file == "" || k.pos.File == s.file)
}

// at returns the position of a dotted path in the service's merged tree
// (list items by index: "listeners.1.port"), or of its nearest ancestor
// that is set, or the start of the service file.
func (s *Service) at(p string) Pos {
	n := s.src
	best := Pos{}
	if n != nil {
		best = n.pos
	}
	for seg := range strings.SplitSeq(p, ".") {
		if n == nil {
			break
		}
		switch n.kind {
		case kindMap:
			n = n.get(seg)
		case kindSeq:
			i := -1
			fmt.Sscanf(seg, "%d", &i)
			if i >= 0 && i < len(n.items) {
				n = n.items[i]
			} else {
				n = nil
			}
		default:
			n = nil
		}
		if n != nil && n.pos.Line > 0 {
			best = n.pos
		}
	}
	return best
}

// TLSThreads is the HAProxy thread count of a VIP that terminates TLS
// (rule I27); every other VIP runs one thread.
const TLSThreads = 2

// vipThreads is rule I27: one HAProxy per VIP does not claim every core. A
// VIP runs one thread, enough for plain HTTP and TCP proxying at campus
// rates; one that terminates TLS on any port runs TLSThreads, since
// handshakes are CPU work. The node spreads the VIPs' threads over its
// cores (cpu-map) and may override the count (lbctl.yaml haproxy.threads).
func vipThreads(v *model.VIP) int {
	for _, p := range v.Ports {
		if p.TLS {
			return TLSThreads
		}
	}
	return 1
}
