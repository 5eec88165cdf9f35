package haproxy

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

// backend writes one backend section: its settings, the health check,
// the default-server line and the servers.
func (r *vipRender) backend(b *backend) {
	r.w.Line("backend %s", b.name)
	r.w.In()
	defer r.w.Out()
	r.backendSettings(b.svc.Service)
	r.healthCheck(b.svc.Service)
	if def := r.defaultServer(b); len(def) > 0 {
		r.w.Line("default-server %s", strings.Join(def, " "))
	}
	r.servers(b)
}

// backendSettings writes the mode, balance, timeouts and the HTTP
// headers and redirects the backend adds.
func (r *vipRender) backendSettings(s *model.Service) {
	be := s.Backend
	w := r.w
	w.Line("mode %s", s.Mode)
	balance := be.Balance
	if balance == "" {
		balance = "roundrobin"
	}
	w.Line("balance %s", balance)
	if t := s.Timeouts.ConnectMS; t > 0 {
		w.Line("timeout connect %s", text.Duration(t))
	}
	if t := s.Timeouts.ServerMS; t > 0 {
		w.Line("timeout server %s", text.Duration(t))
	}
	if t := s.Timeouts.TunnelMS; t > 0 {
		w.Line("timeout tunnel %s", text.Duration(t))
	}
	if s.Mode != model.ModeHTTP {
		return
	}
	if be.ForwardFor {
		w.Line("option forwardfor")
		w.Line("http-request set-header X-Forwarded-Proto https if { ssl_fc }")
		w.Line("http-request set-header X-Forwarded-Proto http if !{ ssl_fc }")
	}
	for _, rd := range s.Redirects {
		w.Line("http-request redirect location %s code %d if %s", r.word(rd.To, true), rd.Code, pathPrefixCond(r.word(rd.From, false)))
	}
	if s.TLS != nil && s.TLS.HSTSMaxAge > 0 {
		w.Line(`http-response set-header Strict-Transport-Security "max-age=%d" if { ssl_fc }`, s.TLS.HSTSMaxAge)
	}
}

// healthCheck writes the options of the backend's protocol check.
func (r *vipRender) healthCheck(s *model.Service) {
	check := s.Backend.Check
	w := r.w
	switch check.Type {
	case model.CheckHTTP:
		w.Line("option httpchk")
		method := check.Method
		if method == "" {
			method = "GET"
		}
		uri := check.Path
		if uri == "" {
			uri = "/"
		}
		host := check.Host
		if host == "" {
			host = s.FQDN
		}
		send := fmt.Sprintf("http-check send meth %s uri %s ver HTTP/1.1", r.word(method, false), r.word(uri, false))
		if host != "" {
			// A header value is a log-format string.
			send += " hdr Host " + r.word(host, true)
		}
		w.Line("%s", send)
		codes, _ := expectStatus(check.ExpectStatus)
		w.Line("http-check expect status %s", codes)
	case model.CheckSMTP:
		w.Line("option smtpchk EHLO %s", r.word(checkHelo(s.FQDN), false))
	case model.CheckLDAP:
		w.Line("option ldap-check")
	}
}

// defaultServer is the words of the backend's default-server line: check
// timing, PROXY protocol and TLS towards the servers.
func (r *vipRender) defaultServer(b *backend) []string {
	s := b.svc
	be := s.Backend
	check := be.Check
	checked := check.Type != model.CheckNone && check.Type != ""
	var def []string
	if checked {
		def = append(def, "check")
		if check.IntervalMS > 0 {
			def = append(def, "inter "+text.Duration(check.IntervalMS))
		}
		if check.Rise > 0 {
			def = append(def, fmt.Sprintf("rise %d", check.Rise))
		}
		if check.Fall > 0 {
			def = append(def, fmt.Sprintf("fall %d", check.Fall))
		}
		// A protocol check speaks the service's protocol on its main port:
		// SMTP on 25 says more about port 465 (implicit TLS) than a
		// handshake would.
		if check.Type != model.CheckTCP && be.Port > 0 && be.Port != b.port {
			def = append(def, fmt.Sprintf("port %d", be.Port))
		}
	}
	switch be.Proxy {
	case model.ProxyV1:
		def = append(def, "send-proxy")
	case model.ProxyV2:
		def = append(def, "send-proxy-v2")
	}
	if (be.Proxy == model.ProxyV1 || be.Proxy == model.ProxyV2) && checked {
		// Servers that expect PROXY refuse checks without it.
		def = append(def, "check-send-proxy")
	}
	if be.TLS {
		// The model carries no CA for backends: the LB encrypts but does
		// not authenticate them.
		def = append(def, "ssl verify none")
		if s.FQDN != "" {
			def = append(def, "sni "+r.word("str("+s.FQDN+")", false))
			if checked {
				def = append(def, "check-sni "+r.word(s.FQDN, false))
			}
		}
	}
	return def
}

// servers writes the source line of a transparent backend and one server
// line per server.
func (r *vipRender) servers(b *backend) {
	be := b.svc.Backend
	w := r.w
	// Transparent services connect to the servers from the client's
	// address; the source family must match each server's.
	var v4, v6 bool
	for _, srv := range be.Servers {
		if a := srv.Address; a.IsValid() {
			v4 = v4 || a.Is4()
			v6 = v6 || !a.Is4()
		}
	}
	transparent := b.svc.Transparent
	perServerSource := transparent && v4 && v6
	if transparent && !perServerSource {
		if v6 {
			w.Line("source :: usesrc clientip")
		} else {
			w.Line("source 0.0.0.0 usesrc clientip")
		}
	}
	names := make([]string, len(be.Servers))
	for i, srv := range be.Servers {
		names[i] = srv.Name + "\x00" + srv.Address.String()
	}
	ids := text.Unique(names, func(k string) string { return text.Identifier(k[:strings.IndexByte(k, 0)], "") })
	for i, srv := range be.Servers {
		a := srv.Address
		if !a.IsValid() {
			continue // reported by checkService
		}
		line := fmt.Sprintf("server %s %s", ids[names[i]], netip.AddrPortFrom(a, uint16(b.port)))
		line += r.sharedCheck(be, b.port, a)
		if srv.Weight != nil {
			line += fmt.Sprintf(" weight %d", *srv.Weight)
		}
		if srv.Disabled {
			line += " disabled"
		}
		if perServerSource {
			if a.Is4() {
				line += " source 0.0.0.0 usesrc clientip"
			} else {
				line += " source :: usesrc clientip"
			}
		}
		w.Line("%s", line)
	}
}

// pathPrefixCond matches a path prefix on segment boundaries: "/old" matches
// "/old" and "/old/x", not "/older".
func pathPrefixCond(from string) string {
	if strings.HasSuffix(from, "/") {
		return fmt.Sprintf("{ path_beg %s }", from)
	}
	return fmt.Sprintf("{ path %s } || { path_beg %s/ }", from, from)
}

var statusRE = regexp.MustCompile(`^([1-5])([0-9x])([0-9x])$`)

// expectStatus turns the model's status expression ("200", "2xx", a comma
// separated list of those, or empty for 2xx and 3xx) into HAProxy's list of
// codes and ranges.
func expectStatus(e string) (string, error) {
	if strings.TrimSpace(e) == "" {
		return "200-399", nil
	}
	var out []string
	for _, part := range strings.FieldsFunc(e, func(r rune) bool { return r == ',' || r == ' ' }) {
		m := statusRE.FindStringSubmatch(strings.ToLower(part))
		switch {
		case m == nil:
			return "", fmt.Errorf("expect status %q: want codes like 200 or 2xx", e)
		case m[2] != "x" && m[3] != "x":
			out = append(out, part)
		case m[2] == "x" && m[3] == "x":
			out = append(out, fmt.Sprintf("%s00-%s99", m[1], m[1]))
		case m[2] != "x" && m[3] == "x":
			out = append(out, fmt.Sprintf("%s%s0-%s%s9", m[1], m[2], m[1], m[2]))
		default:
			return "", fmt.Errorf("expect status %q: %q is not a code or a range like 2xx", e, part)
		}
	}
	return strings.Join(out, ","), nil
}

// checkHelo is the domain the SMTP check greets with.
func checkHelo(fqdn string) string {
	if fqdn == "" {
		return "localhost"
	}
	return fqdn
}
