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
	// rule is the row of the inference table that states it.
	rule string
	mode string
	// port and tlsPort are the default backend ports without and with
	// backend TLS; 0 means "the first listener's port".
	port, tlsPort int
	check         string
	// listeners are the default ports in mode tcp.
	listeners []int
}

var softwares = map[string]software{
	"apache2": {rule: "I5", mode: model.ModeHTTP, port: 80, tlsPort: 443, check: model.CheckHTTP},
	"nginx":   {rule: "I5", mode: model.ModeHTTP, port: 80, tlsPort: 443, check: model.CheckHTTP},
	"iis":     {rule: "I5", mode: model.ModeHTTP, port: 80, tlsPort: 443, check: model.CheckHTTP},
	"tomcat":  {rule: "I6", mode: model.ModeHTTP, port: 8080, tlsPort: 8443, check: model.CheckHTTP},
	"postfix": {rule: "I8", mode: model.ModeTCP, port: 25, tlsPort: 25, check: model.CheckSMTP, listeners: []int{25, 465, 587}},
	"dovecot": {rule: "I9", mode: model.ModeTCP, port: 143, tlsPort: 143, check: model.CheckTCP, listeners: []int{143, 993}},
	"slapd":   {rule: "I10", mode: model.ModeTCP, port: 389, tlsPort: 389, check: model.CheckLDAP, listeners: []int{389, 636}},
	"generic": {rule: "I11", mode: "", port: 0, check: model.CheckTCP},
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

// inference is one service on its way through the inference rules: the
// decoded service and what the resolver found for it, what the rules have
// decided so far, and the model.Service they fill in.
type inference struct {
	s       *Service
	addrs   []netip.Addr
	servers []model.Server
	errs    *errList

	out model.Service

	sw         string   // backend.software, "generic" when unset
	soft       software // what sw implies
	http       bool     // mode http
	has4, has6 bool     // the FQDN has an A / AAAA record
	tlsOn      bool     // the service terminates TLS
	backendTLS bool     // backend.tls
	port       int      // the backend port
	// implied are the listeners as written, or those implied when none
	// are (each with its path for errors, repeats included); listeners
	// are the distinct ones, as the model will carry them.
	implied   []impliedListener
	listeners []inferredListener
}

type impliedListener struct {
	l    Listener
	path string
}

type inferredListener struct {
	impliedListener
	m model.Listener
}

// inferenceRule is one step of infer: a rule of the inference table in
// docs/intents.md (ids), or a step the table's "Other details" describe
// (no id).
type inferenceRule struct {
	ids   string // "I14", or "I1 I2" for the two sides of one decision
	apply func(*inference)
}

// inferenceRules are the rules infer applies, in order: each reads what
// the rules before it decided. The software rows (I5, I6, I8, I9, I10) are
// data in softwares, read by the rules here; the rules about a whole VIP
// or a backend host are in vipRules. TestInferenceTable checks that these
// and the table in docs/intents.md name the same rules.
var inferenceRules = []inferenceRule{
	{"", inferNames},
	{"I14", inferI14Mode},
	{"I19", inferI19Addresses},
	{"I4", inferI4TLS},
	{"I7", inferI7BackendPort},
	{"I3", inferI3Listeners},
	{"I11", inferI11GenericTCP},
	{"", inferDistinctListeners},
	{"I13", inferI13ListenerTLS},
	{"I20", inferI20ListenerFamilies},
	{"I12", inferI12ListenerBackendPort},
	{"I1 I2", inferI1I2Redirect},
	{"", inferListenerOrder},
	{"", inferBackend},
	{"I23", inferI23Check},
	{"", inferServerSettings},
	{"I15 I16", inferI15I16ForwardFor},
	{"I17 I18", inferI17I18ModeDefaults},
	{"I24", inferI24Redirects},
	{"", inferAllow},
	{"I22", inferI22Transparent},
	{"", inferContacts},
	{"", inferBGP},
}

// vipRules are the inference rules applied outside infer, and where.
var vipRules = []struct{ id, where string }{
	{"I21", "vipName, when crossCheck groups the services into VIPs"},
	{"I25", "(*resolver).servers, which resolves the backend hosts"},
	{"I26", "hardStopAfter in bundle/render/haproxy"},
	{"I27", "vipThreads, when crossCheck groups the services into VIPs"},
	{"I28", "vipBGP, when crossCheck groups the services into VIPs"},
	{"I29", "nodeBackup, when nodes converts the node profiles"},
}

// infer turns a decoded service, the addresses of its FQDN and its resolved
// servers into the explicit model.Service. It is pure: it applies
// inferenceRules in order.
func infer(s *Service, addrs []netip.Addr, servers []model.Server, errs *errList) model.Service {
	x := &inference{s: s, addrs: addrs, servers: servers, errs: errs}
	for _, r := range inferenceRules {
		r.apply(x)
	}
	return x.out
}

// inferNames: the FQDN and the aliases are host names, lower-cased without
// a trailing dot; aliases are sorted and distinct.
func inferNames(x *inference) {
	s := x.s
	x.out.Name, x.out.Source, x.out.Owner = s.Name, s.Source, s.Owner
	x.out.FQDN = canonicalName(s.FQDN)
	if !validHostname(x.out.FQDN) {
		x.errs.Add(s.at("fqdn"), "fqdn %s is not a valid host name", short(s.FQDN))
	}
	for i, a := range s.Aliases {
		a = canonicalName(a)
		if !validHostname(a) {
			x.errs.Add(s.at(fmt.Sprintf("aliases.%d", i)), "alias %s is not a valid host name", short(s.Aliases[i]))
			continue
		}
		if a == x.out.FQDN {
			x.errs.Add(s.at(fmt.Sprintf("aliases.%d", i)), "alias %s repeats the fqdn", short(s.Aliases[i]))
			continue
		}
		x.out.Aliases = append(x.out.Aliases, a)
	}
	slices.Sort(x.out.Aliases)
	if n := len(x.out.Aliases); n != len(slices.Compact(x.out.Aliases)) {
		x.errs.Add(s.at("aliases"), "aliases repeat a name")
	}
	x.out.Aliases = slices.Compact(x.out.Aliases)
}

// inferI14Mode: without a mode, the software's (http when it has none); a
// mode that contradicts the software's is an error.
func inferI14Mode(x *inference) {
	x.sw = x.s.Backend.Software
	if x.sw == "" {
		x.sw = "generic"
	}
	x.soft = softwares[x.sw]
	x.out.Mode = x.s.Mode
	if x.out.Mode == "" {
		x.out.Mode = x.soft.mode
		if x.out.Mode == "" {
			x.out.Mode = model.ModeHTTP
		}
	} else if x.soft.mode != "" && x.soft.mode != x.out.Mode {
		x.errs.Add(x.s.at("mode"), "mode %s does not fit backend.software %s (mode %s)", x.out.Mode, x.sw, x.soft.mode)
	}
	x.http = x.out.Mode == model.ModeHTTP
}

// inferI19Addresses: the VIP's addresses are the FQDN's A and AAAA records.
func inferI19Addresses(x *inference) {
	for _, a := range x.addrs {
		x.out.Addresses = append(x.out.Addresses, a)
		x.has4 = x.has4 || a.Is4()
		x.has6 = x.has6 || a.Is6()
	}
}

// inferI4TLS: TLS is on when tls.enabled or a listener's tls says so;
// certificate the FQDN, min_version 1.2, ciphers intermediate unless set.
// TLS settings the service file writes without TLS are errors.
func inferI4TLS(x *inference) {
	s := x.s
	tlsOff := s.TLS.Enabled != nil && !*s.TLS.Enabled
	x.tlsOn = s.TLS.Enabled != nil && *s.TLS.Enabled
	for i, l := range s.Listeners {
		if l.TLS != nil && *l.TLS {
			if tlsOff {
				x.errs.Add(s.at(fmt.Sprintf("listeners.%d.tls", i)), "listener %d terminates TLS but tls.enabled is false", l.Port)
			}
			x.tlsOn = true
		}
	}
	if !x.tlsOn {
		// TLS settings the service file writes without TLS would
		// promise what nothing does (port 80 keeps serving plain HTTP
		// despite tls.redirect). Inherited ones are a subtree's
		// defaults for the services that do enable TLS.
		for _, f := range []string{"certificate", "redirect", "hsts", "min_version", "ciphers"} {
			if s.ownSets("tls." + f) {
				x.errs.Add(s.at("tls."+f), "tls.%s has no effect: the service does not terminate TLS (enable tls, or remove tls.%s)", f, f)
			}
		}
		return
	}
	t := &model.TLS{
		Certificate:   s.TLS.Certificate,
		MinVersion:    s.TLS.MinVersion,
		CipherProfile: s.TLS.Ciphers,
		HSTSMaxAge:    s.TLS.HSTS,
	}
	if t.Certificate == "" {
		t.Certificate = x.out.FQDN
	} else if !certNameRE.MatchString(t.Certificate) {
		x.errs.Add(s.at("tls.certificate"), "certificate %s: a name of letters, digits, '.', '_' and '-'", short(t.Certificate))
	}
	if t.MinVersion == "" {
		t.MinVersion = defaultMinVersion
	}
	if t.CipherProfile == "" {
		t.CipherProfile = defaultCiphers
	}
	x.out.TLS = t
}

// inferI7BackendPort: backend.port, else the software's port (I5, I6),
// its TLS port with backend.tls (I7); mode http falls back to 80 (443
// with backend.tls). Mode tcp without either is I11's.
func inferI7BackendPort(x *inference) {
	b := x.s.Backend
	x.backendTLS = b.TLS != nil && *b.TLS
	x.port = b.Port
	if x.port != 0 {
		return
	}
	x.port = x.soft.port
	if x.backendTLS {
		x.port = x.soft.tlsPort
	}
	if x.port == 0 && x.http {
		x.port = 80
		if x.backendTLS {
			x.port = 443
		}
	}
}

// inferI3Listeners: the listeners written, else mode http listens on 80
// (and 443 with TLS, I1 and I2), mode tcp on the software's ports (I8, I9,
// I10).
func inferI3Listeners(x *inference) {
	if len(x.s.Listeners) > 0 {
		for i, l := range x.s.Listeners {
			x.implied = append(x.implied, impliedListener{l, fmt.Sprintf("listeners.%d", i)})
		}
		return
	}
	ports := x.soft.listeners
	switch {
	case x.http && x.tlsOn:
		ports = []int{80, 443}
	case x.http:
		ports = []int{80}
	}
	for _, p := range ports {
		x.implied = append(x.implied, impliedListener{Listener{Port: p}, "listeners"})
	}
}

// inferI11GenericTCP: mode tcp with a software that implies no listeners
// needs them written; without a backend port the servers listen on the
// first listener's port.
func inferI11GenericTCP(x *inference) {
	if len(x.s.Listeners) == 0 && !x.http && len(x.soft.listeners) == 0 {
		x.errs.Add(x.s.at("backend"), "mode tcp with backend.software %s: listeners are required", x.sw)
	}
	if x.port == 0 && len(x.implied) > 0 {
		x.port = x.implied[0].l.Port
	}
}

// inferDistinctListeners: a listener port appears once; each listener
// serves (passes to the backend) until a rule decides otherwise.
func inferDistinctListeners(x *inference) {
	seen := map[int]bool{}
	for _, il := range x.implied {
		if seen[il.l.Port] {
			x.errs.Add(x.s.at(il.path+".port"), "listener port %d repeated", il.l.Port)
			continue
		}
		seen[il.l.Port] = true
		m := model.Listener{Port: il.l.Port, Action: model.ActionServe}
		x.listeners = append(x.listeners, inferredListener{il, m})
	}
}

// inferI13ListenerTLS: with TLS on, a listener on an implicit-TLS port
// terminates TLS unless its tls says otherwise; TLS on with no listener
// terminating it is an error.
func inferI13ListenerTLS(x *inference) {
	anyTLS := false
	for i := range x.listeners {
		il := &x.listeners[i]
		if il.l.TLS != nil {
			il.m.TLS = *il.l.TLS
		} else {
			il.m.TLS = x.tlsOn && slices.Contains(implicitTLSPorts, il.l.Port)
		}
		anyTLS = anyTLS || il.m.TLS
	}
	if x.tlsOn && !anyTLS && len(x.listeners) > 0 {
		x.errs.Add(x.s.at("tls"), "tls is enabled but no listener terminates it: add port 443 (or mark a listener tls: true)")
	}
}

// inferI20ListenerFamilies: a listener binds each address family the VIP
// has (I19) unless its ipv4/ipv6 is false; asking for a family the VIP
// lacks, or leaving a listener none, is an error.
func inferI20ListenerFamilies(x *inference) {
	for i := range x.listeners {
		il := &x.listeners[i]
		l := il.l
		il.m.IPv4 = x.has4 && (l.IPv4 == nil || *l.IPv4)
		il.m.IPv6 = x.has6 && (l.IPv6 == nil || *l.IPv6)
		if l.IPv4 != nil && *l.IPv4 && !x.has4 && len(x.addrs) > 0 {
			x.errs.Add(x.s.at(il.path+".ipv4"), "listener %d: ipv4 requested but %s has no A record", l.Port, x.out.FQDN)
		}
		if l.IPv6 != nil && *l.IPv6 && !x.has6 && len(x.addrs) > 0 {
			x.errs.Add(x.s.at(il.path+".ipv6"), "listener %d: ipv6 requested but %s has no AAAA record", l.Port, x.out.FQDN)
		}
		if !il.m.IPv4 && !il.m.IPv6 && len(x.addrs) > 0 {
			x.errs.Add(x.s.at(il.path), "listener %d listens on no address family", l.Port)
		}
	}
}

// inferI12ListenerBackendPort: a listener goes to its backend_port, else
// to the backend port in mode http, when it terminates TLS (I13) or with
// backend.port set; else (mode tcp, no TLS) to its own port.
func inferI12ListenerBackendPort(x *inference) {
	for i := range x.listeners {
		il := &x.listeners[i]
		switch {
		case il.l.BackendPort != 0:
			il.m.BackendPort = il.l.BackendPort
		case x.http || il.m.TLS || x.s.Backend.Port != 0:
			il.m.BackendPort = x.port
		default:
			il.m.BackendPort = il.l.Port
		}
	}
}

// inferI1I2Redirect: in mode http with TLS on, the plain-HTTP listeners
// redirect to https (I2) unless tls.redirect is false (I1: they pass to the
// backend, whose web server redirects). Redirect and HSTS need mode http.
func inferI1I2Redirect(x *inference) {
	if !x.tlsOn {
		return
	}
	s := x.s
	if !x.http {
		if s.TLS.Redirect != nil && *s.TLS.Redirect {
			x.errs.Add(s.at("tls.redirect"), "tls.redirect needs mode http")
		}
		if s.TLS.HSTS != 0 {
			x.errs.Add(s.at("tls.hsts"), "tls.hsts needs mode http")
		}
		return
	}
	redirect := s.TLS.Redirect == nil || *s.TLS.Redirect
	if !redirect {
		return
	}
	for i := range x.listeners {
		il := &x.listeners[i]
		if il.m.TLS {
			continue
		}
		il.m.Action, il.m.BackendPort = model.ActionRedirectHTTPS, 0
		if il.l.BackendPort != 0 {
			x.errs.Add(s.at(il.path+".backend_port"), "listener %d redirects to https: backend_port does not apply", il.l.Port)
		}
	}
}

// inferListenerOrder: the model's listeners, sorted by port.
func inferListenerOrder(x *inference) {
	for _, il := range x.listeners {
		x.out.Listeners = append(x.out.Listeners, il.m)
	}
	slices.SortFunc(x.out.Listeners, func(a, b model.Listener) int { return a.Port - b.Port })
}

// inferBackend: the backend as written, with its servers and port; proxy
// none unless set.
func inferBackend(x *inference) {
	b := x.s.Backend
	x.out.Backend = model.Backend{
		Group:    b.Group,
		Servers:  x.servers,
		Port:     x.port,
		Software: x.sw,
		Balance:  b.Balance,
		Proxy:    b.Proxy,
		TLS:      x.backendTLS,
		MinUp:    b.MinUp,
	}
	if x.out.Backend.Servers == nil {
		x.out.Backend.Servers = []model.Server{}
	}
	if x.out.Backend.Proxy == "" {
		x.out.Backend.Proxy = model.ProxyNone
	}
}

// inferI23Check: the check the software implies (I5, I8-I11) unless
// written, every 2s, rise 2, fall 3; an http check details method GET,
// path / and host the FQDN; a mode tcp service falls back to a tcp check
// when its software's is http. min_up is 1.
func inferI23Check(x *inference) {
	if x.out.Backend.MinUp == 0 {
		x.out.Backend.MinUp = 1
	}
	c := inferCheck(x.s, x.soft, x.out.FQDN, x.errs)
	if c.Type == model.CheckHTTP && !x.http && x.s.Backend.Check.Type == "" {
		c = model.Check{Type: model.CheckTCP, IntervalMS: c.IntervalMS, Rise: c.Rise, Fall: c.Fall}
	}
	x.out.Backend.Check = c
}

// inferServerSettings: backend.servers set a server's weight and disabled
// flag; min_up cannot exceed the servers (not disabled).
func inferServerSettings(x *inference) {
	mb := &x.out.Backend
	s := x.s
	applyServerSettings(s, mb, s.Backend.Servers, x.errs)
	if len(x.servers) > 0 && mb.MinUp > len(x.servers) {
		x.errs.Add(s.at("backend.min_up"), "backend.min_up %d exceeds the %d servers", mb.MinUp, len(x.servers))
	} else if enabled := enabledServers(mb.Servers); len(x.servers) > 0 && mb.MinUp > enabled {
		x.errs.Add(s.at("backend.min_up"), "backend.min_up %d exceeds the %d servers not disabled", mb.MinUp, enabled)
	}
}

// inferI15I16ForwardFor: X-Forwarded-For in mode http with proxy none
// (I15), not with a PROXY protocol (I16), unless forward_for is set;
// forward_for needs mode http.
func inferI15I16ForwardFor(x *inference) {
	ff := x.s.Backend.ForwardFor
	switch {
	case ff != nil && *ff && !x.http:
		x.errs.Add(x.s.at("backend.forward_for"), "backend.forward_for needs mode http")
	case ff != nil:
		x.out.Backend.ForwardFor = *ff
	default:
		x.out.Backend.ForwardFor = x.http && x.out.Backend.Proxy == model.ProxyNone
	}
}

// inferI17I18ModeDefaults: mode http balances roundrobin with the HTTP
// timeouts (I17), mode tcp leastconn with the long TCP ones (I18); written
// values win.
func inferI17I18ModeDefaults(x *inference) {
	if x.out.Backend.Balance == "" {
		x.out.Backend.Balance = "roundrobin"
		if !x.http {
			x.out.Backend.Balance = "leastconn"
		}
	}
	t := &x.out.Timeouts
	*t = httpTimeouts
	if !x.http {
		*t = tcpTimeouts
	}
	w := x.s.Timeouts
	for _, o := range []struct {
		d   Duration
		out *int
	}{{w.Connect, &t.ConnectMS}, {w.Client, &t.ClientMS}, {w.Server, &t.ServerMS}, {w.Tunnel, &t.TunnelMS}} {
		if d := o.d.MS(); d > 0 {
			*o.out = d
		}
	}
}

// inferI24Redirects: path redirects (mode http), code 301 unless set,
// sorted by path.
func inferI24Redirects(x *inference) {
	s := x.s
	seenFrom := map[string]bool{}
	for i, r := range s.Redirects {
		p := fmt.Sprintf("redirects.%d", i)
		if !x.http {
			x.errs.Add(s.at(p), "redirects need mode http")
			break
		}
		if !strings.HasPrefix(r.From, "/") {
			x.errs.Add(s.at(p+".from"), "redirect from %s: a path starting with /", short(r.From))
		}
		if seenFrom[r.From] {
			x.errs.Add(s.at(p+".from"), "redirect from %s repeated", short(r.From))
		}
		seenFrom[r.From] = true
		code := r.Code
		if code == 0 {
			code = defaultRedirectCode
		}
		if !slices.Contains([]int{301, 302, 303, 307, 308}, code) {
			x.errs.Add(s.at(p+".code"), "redirect code %d: one of 301, 302, 303, 307, 308", code)
		}
		x.out.Redirects = append(x.out.Redirects, model.Redirect{From: r.From, To: r.To, Code: code})
	}
	slices.SortFunc(x.out.Redirects, func(a, b model.Redirect) int { return strings.Compare(a.From, b.From) })
}

// inferAllow: the client ACL, canonical prefixes.
func inferAllow(x *inference) { x.out.AllowedSources = prefixList(x.s.Allow) }

// inferI22Transparent: transparent proxying, with its intercept prefixes.
func inferI22Transparent(x *inference) {
	s := x.s
	x.out.Transparent = s.Transparent.Enabled != nil && *s.Transparent.Enabled
	if len(s.Transparent.Intercept) > 0 && !x.out.Transparent {
		x.errs.Add(s.at("transparent.intercept"), "transparent.intercept needs transparent enabled")
	}
	if x.out.Transparent {
		x.out.InterceptPrefixes = prefixList(s.Transparent.Intercept)
	}
}

// inferContacts: monitoring contacts are e-mail addresses, sorted and
// distinct.
func inferContacts(x *inference) {
	for i, c := range x.s.Contacts {
		a, err := mail.ParseAddress(c)
		if err != nil || a.Name != "" || a.Address != c {
			x.errs.Add(x.s.at(fmt.Sprintf("contacts.%d", i)), "contact %s is not an e-mail address", short(c))
			continue
		}
		x.out.Contacts = append(x.out.Contacts, c)
	}
	slices.Sort(x.out.Contacts)
	x.out.Contacts = slices.Compact(x.out.Contacts)
}

// inferBGP: the service's communities, sorted and distinct, and its
// primary node's host name, lower-cased (checked against the node
// profiles when the VIPs are grouped, vipBGP).
func inferBGP(x *inference) {
	b := x.s.BGP
	x.out.BGP = model.RouteAttrs{
		Communities:      communities(b.Communities),
		LargeCommunities: largeCommunities(b.LargeCommunities),
		Primary:          canonicalName(b.Primary),
	}
}

// inferCheck is the check of I23 and the software's (I5, I8-I11).
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
				errs.Add(s.at("backend.check."+f), "backend.check.%s applies to http checks only (check type is %s)", f, out.Type)
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
		errs.Add(s.at("backend.check.path"), "backend.check.path %s: a path starting with / and without spaces", short(c.Path))
	}
	out.Host = c.Host
	if out.Host == "" {
		out.Host = fqdn
	} else if !validHostname(canonicalName(out.Host)) {
		errs.Add(s.at("backend.check.host"), "backend.check.host %s is not a valid host name", short(c.Host))
	}
	out.ExpectStatus = c.Expect
	if out.ExpectStatus != "" && !statusRE.MatchString(out.ExpectStatus) {
		errs.Add(s.at("backend.check.expect"), "backend.check.expect %s: a status like 200 or 2xx", short(c.Expect))
	}
	return out
}

// prefixList returns the canonical, sorted, distinct prefixes of ps,
// leaving out those that did not decode (already reported at their line).
func prefixList(ps []Prefix) []netip.Prefix {
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
	return slices.Compact(sorted)
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
