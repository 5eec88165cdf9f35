package haproxy

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

// aclChunk bounds the values on one acl line (HAProxy reads at most 64
// words per line); lines with the same ACL name are ORed.
const aclChunk = 16

// binding is a service's listener on a port.
type binding struct {
	svc *service
	l   model.Listener
}

// certGroup is one certificate with one TLS policy and the host names
// (SNI) it serves on a port.
type certGroup struct {
	cert   string
	pol    policy
	polKey string
	names  []string
}

// frontendName names the frontend of a port.
func frontendName(port int) string { return fmt.Sprintf("fe-%d", port) }

// frontend writes the frontend of one port: mode and binds, source ACLs,
// and the routing of each connection or request to its service.
func (r *vipRender) frontend(p model.Port) {
	bs := r.bindings(p)
	if len(bs) == 0 {
		r.fail("port %d: no services", p.Port)
		return
	}
	w := r.w
	w.Line("frontend %s", frontendName(p.Port))
	w.In()
	defer w.Out()
	if p.Mode == model.ModeHTTP {
		w.Line("mode http")
		w.Line("option httplog")
	} else {
		w.Line("mode tcp")
		w.Line("option tcplog")
	}
	for _, b := range r.binds(p, bs) {
		w.Line("%s", b)
	}
	client := 0
	for _, b := range bs {
		client = max(client, b.svc.Timeouts.ClientMS)
	}
	if client > 0 {
		w.Line("timeout client %s", text.Duration(client))
	}
	sameSources := r.connectionSources(bs)
	if len(bs) == 1 {
		b := bs[0]
		if b.l.Action == model.ActionRedirectHTTPS {
			w.Line("http-request redirect scheme https code 301")
			return
		}
		w.Line("default_backend %s", r.backendFor(b.svc, backendPort(b.svc, b.l)))
		return
	}
	r.route(p, bs, sameSources)
}

// bindings are the services listening on port p with their listeners.
func (r *vipRender) bindings(p model.Port) []binding {
	var bs []binding
	for _, name := range p.Services {
		s := r.byName[name]
		if s == nil {
			r.fail("port %d: service %s is not bound to the VIP", p.Port, name)
			continue
		}
		l, ok := s.listener(p.Port)
		if !ok {
			r.fail("port %d: service %s has no listener on it", p.Port, name)
			continue
		}
		if s.Mode != p.Mode || l.TLS != p.TLS {
			r.fail("port %d: service %s (mode %s, tls %v) disagrees with the port (mode %s, tls %v)", p.Port, name, s.Mode, l.TLS, p.Mode, p.TLS)
		}
		bs = append(bs, binding{s, l})
	}
	return bs
}

// connectionSources writes the source ACLs: one connection-level rule
// when every service of the port admits the same clients (then it
// returns true), else route writes a rule per service after routing.
func (r *vipRender) connectionSources(bs []binding) bool {
	sameSources := true
	for _, b := range bs {
		if !slices.Equal(b.svc.AllowedSources, bs[0].svc.AllowedSources) {
			sameSources = false
		}
	}
	limited := false
	for _, b := range bs {
		limited = limited || len(b.svc.AllowedSources) > 0
	}
	if limited {
		// The node's own health probes connect to the VIP from the VIP
		// address: admit them whatever the clients allowed.
		r.aclLines(r.w, "node_probe", "src", text.Strings(r.addrs))
	}
	if sameSources && len(bs[0].svc.AllowedSources) > 0 {
		r.aclLines(r.w, "allowed_sources", "src", text.Strings(bs[0].svc.AllowedSources))
		r.w.Line("tcp-request connection reject unless allowed_sources || node_probe")
	}
	return sameSources
}

// route names the service of each connection (request) of a port several
// services share in txn.service, by Host header in http mode, by SNI in
// tcp mode, and sends it to that service's backend or redirect.
func (r *vipRender) route(p model.Port, bs []binding, sameSources bool) {
	w := r.w
	http := p.Mode == model.ModeHTTP
	// The default service gets what no host name (SNI) claims: the first
	// service that serves, else the first one.
	def := bs[0]
	for _, b := range bs {
		if b.l.Action == model.ActionServe {
			def = b
			break
		}
	}
	rule := "http-request"
	switch {
	case http:
		w.Line("http-request set-var(txn.host) req.hdr(host),field(1,:),lower")
	case p.TLS:
		rule = "tcp-request content"
		w.Line("tcp-request content set-var(txn.host) ssl_fc_sni,lower")
	default:
		rule = "tcp-request content"
		w.Line("tcp-request inspect-delay 5s")
		w.Line("tcp-request content accept if { req.ssl_hello_type 1 }")
		w.Line("tcp-request content set-var(txn.host) req.ssl_sni,lower")
	}
	for _, b := range bs {
		r.aclLines(w, "host."+b.svc.id, "var(txn.host) -m str", hostNames(b.svc.Service))
	}
	for _, b := range bs {
		w.Line("%s set-var(txn.service) str(%s) if host.%s !{ var(txn.service) -m found }", rule, b.svc.id, b.svc.id)
	}
	w.Line("%s set-var(txn.service) str(%s) if !{ var(txn.service) -m found }", rule, def.svc.id)
	for _, b := range bs {
		w.Line("acl service.%s var(txn.service) -m str %s", b.svc.id, b.svc.id)
	}
	if !sameSources {
		r.serviceSources(bs, http)
	}
	for _, b := range bs {
		if b.l.Action == model.ActionRedirectHTTPS {
			w.Line("http-request redirect scheme https code 301 if service.%s", b.svc.id)
		}
	}
	for _, b := range bs {
		if b.l.Action == model.ActionServe && b != def {
			w.Line("use_backend %s if service.%s", r.backendFor(b.svc, backendPort(b.svc, b.l)), b.svc.id)
		}
	}
	if def.l.Action == model.ActionServe {
		w.Line("default_backend %s", r.backendFor(def.svc, backendPort(def.svc, def.l)))
	} else {
		w.Line("http-request redirect scheme https code 301")
	}
}

// serviceSources writes a source ACL and rule per service that limits its
// clients, once the service of the connection is known.
func (r *vipRender) serviceSources(bs []binding, http bool) {
	for _, b := range bs {
		if len(b.svc.AllowedSources) == 0 {
			continue
		}
		r.aclLines(r.w, "src."+b.svc.id, "src", text.Strings(b.svc.AllowedSources))
		if http {
			r.w.Line("http-request deny deny_status 403 if service.%s !src.%s !node_probe", b.svc.id, b.svc.id)
		} else {
			r.w.Line("tcp-request content reject if service.%s !src.%s !node_probe", b.svc.id, b.svc.id)
		}
	}
}

// aclLines declares an ACL over values, in chunks.
func (r *vipRender) aclLines(w *text.Writer, name, criterion string, values []string) {
	for c := range slices.Chunk(values, aclChunk) {
		words := make([]string, len(c))
		for i, v := range c {
			words[i] = r.word(v, false)
		}
		w.Line("acl %s %s %s", name, criterion, strings.Join(words, " "))
	}
}

// hostNames are the lower-case host names routed to a service.
func hostNames(s *model.Service) []string {
	var out []string
	for _, h := range append([]string{s.FQDN}, s.Aliases...) {
		if h != "" {
			out = append(out, strings.ToLower(strings.TrimSuffix(h, ".")))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// binds returns the bind lines of a port: one per VIP address of the
// families its listeners use.
func (r *vipRender) binds(p model.Port, bs []binding) []string {
	v4, v6, transparent := false, false, false
	for _, b := range bs {
		v4 = v4 || b.l.IPv4
		v6 = v6 || b.l.IPv6
		// Intercepted traffic (nftables tproxy) reaches the listener with
		// foreign destination addresses: the socket must be transparent.
		transparent = transparent || (b.svc.Transparent && len(b.svc.InterceptPrefixes) > 0)
	}
	var opts []string
	if p.TLS {
		opts = append(opts, r.tlsBindOptions(p, bs)...)
		if p.Mode == model.ModeHTTP {
			opts = append(opts, "alpn h2,http/1.1")
		}
	}
	if transparent {
		opts = append(opts, "transparent")
	}
	var out []string
	for _, a := range r.addrs {
		if (a.Is4() && !v4) || (a.Is6() && !v6) {
			continue
		}
		out = append(out, strings.TrimSpace(fmt.Sprintf("bind %s %s", netip.AddrPortFrom(a, uint16(p.Port)), strings.Join(opts, " "))))
	}
	if len(out) == 0 {
		r.fail("port %d: no VIP address of the listeners' address families", p.Port)
	}
	return out
}

// tlsBindOptions returns the ssl keywords of a TLS port's binds: one
// certificate directly, several through a crt-list whose SNI filters pick
// the certificate and policy.
func (r *vipRender) tlsBindOptions(p model.Port, bs []binding) []string {
	var groups []*certGroup
	var def *certGroup
	for _, b := range bs {
		t := b.svc.TLS
		if t == nil {
			continue
		}
		pol, err := tlsPolicy(t)
		if err != nil {
			continue // reported by checkService
		}
		key := pol.options(policy{})
		i := slices.IndexFunc(groups, func(g *certGroup) bool { return g.cert == t.Certificate && g.polKey == key })
		if i < 0 {
			groups = append(groups, &certGroup{cert: t.Certificate, pol: pol, polKey: key})
			i = len(groups) - 1
		}
		groups[i].names = append(groups[i].names, hostNames(b.svc.Service)...)
		if def == nil && b.l.Action == model.ActionServe {
			def = groups[i]
		}
	}
	if len(groups) == 0 {
		return nil
	}
	if def == nil {
		def = groups[0]
	}
	if len(groups) == 1 {
		g := groups[0]
		opts := []string{"ssl", "crt " + r.word(r.certPath(g.cert), false)}
		if o := g.pol.options(r.base); o != "" {
			opts = append(opts, o)
		}
		return opts
	}
	// The first entry of a crt-list is the default certificate (clients
	// without SNI, or with a name no entry claims).
	slices.SortStableFunc(groups, func(a, b *certGroup) int {
		switch {
		case a == def:
			return -1
		case b == def:
			return 1
		}
		if c := strings.Compare(a.cert, b.cert); c != 0 {
			return c
		}
		return strings.Compare(a.polKey, b.polKey)
	})
	list := text.NewWriter("")
	list.Line("# Certificates of port %d of VIP %s by SNI, rendered by lbctl. Do not edit.", p.Port, r.vip.Name)
	for _, g := range groups {
		slices.Sort(g.names)
		g.names = slices.Compact(g.names)
		line := r.word(r.certPath(g.cert), false)
		if o := g.pol.options(r.base); o != "" {
			line += " [" + o + "]"
		}
		for _, n := range g.names {
			line += " " + r.word(n, false)
		}
		list.Line("%s", line)
	}
	if err := list.Err(); err != nil {
		r.errs = append(r.errs, err)
	}
	name := fmt.Sprintf("%d.crt-list", p.Port)
	r.extra = append(r.extra, File{Name: name, Data: list.Bytes()})
	return []string{"ssl", "crt-list " + r.word(path.Join(r.opts.VIPDir, r.vip.Name, name), false)}
}

func (r *vipRender) certPath(name string) string {
	return path.Join(r.opts.CertDir, name+".pem")
}
