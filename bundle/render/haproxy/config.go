package haproxy

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

// ConfigName is the name of the main configuration file in a VIP's
// directory.
const ConfigName = "haproxy.cfg"

// Defaults of Options; the paths agree with the node's configuration
// (node/config) and the systemd template unit.
const (
	DefaultCertDir       = "/etc/lbctl/certs"
	DefaultVIPDir        = "/etc/lbctl/vips"
	DefaultRuntimeDir    = "/run/lbctl"
	DefaultMaxConn       = 20000
	DefaultHardStopAfter = time.Hour
)

// Options are the node-side paths and process limits a configuration
// refers to. The zero value of every field means its default.
type Options struct {
	// CertDir holds <certificate>.pem (chain and key in one file).
	CertDir string
	// VIPDir holds one directory per VIP; files other than haproxy.cfg
	// (crt-lists) are referred to as VIPDir/<vip>/<name>.
	VIPDir string
	// RuntimeDir is the node's runtime directory: the admin socket is
	// RuntimeDir/vips/<vip>/admin.sock (see AdminSocket).
	RuntimeDir string
	// MaxConn is the process-wide connection limit. HAProxy needs about
	// twice as many file descriptors (the template unit allows 1048576).
	MaxConn int
	// HardStopAfter is the floor of the hard-stop-after of every VIP: how
	// long an old worker at least keeps serving its connections after a
	// reload. A VIP whose services allow longer idle connections gets
	// their longest timeout instead (docs/intents.md, rule I26).
	HardStopAfter time.Duration
	// Threads, when positive, is every VIP's thread count on this node,
	// instead of the VIP's own (model.VIP.Threads, rule I27; 1 when the
	// model has none).
	Threads int
	// CPUs, when positive, is the node's core count: each VIP's threads
	// are then pinned (cpu-map) to cores of their own, the VIPs taken in
	// the site's order and spread round-robin over the cores, so that the
	// VIPs' processes share the cores evenly. Zero pins nothing.
	CPUs int
	// SharedChecks is SharedChecks(site): servers checked by several VIPs
	// are checked less often by each (checks.go). Nil checks every server
	// at its service's interval.
	SharedChecks map[netip.AddrPort]int
}

func (o Options) withDefaults() Options {
	if o.CertDir == "" {
		o.CertDir = DefaultCertDir
	}
	if o.VIPDir == "" {
		o.VIPDir = DefaultVIPDir
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = DefaultRuntimeDir
	}
	if o.MaxConn <= 0 {
		o.MaxConn = DefaultMaxConn
	}
	if o.HardStopAfter <= 0 {
		o.HardStopAfter = DefaultHardStopAfter
	}
	return o
}

// AdminSocket is the path of a VIP's admin (stats) socket under runtimeDir
// (the node's runtime directory, default /run/lbctl).
func AdminSocket(runtimeDir, vip string) string {
	if runtimeDir == "" {
		runtimeDir = DefaultRuntimeDir
	}
	return path.Join(runtimeDir, "vips", vip, "admin.sock")
}

// EventsSocket is the agent's unix datagram socket under runtimeDir where
// every VIP's HAProxy sends its server and backend state changes.
func EventsSocket(runtimeDir string) string {
	if runtimeDir == "" {
		runtimeDir = DefaultRuntimeDir
	}
	return path.Join(runtimeDir, "haproxy-events.sock")
}

// File is one rendered file of a VIP, named relative to the VIP's directory
// (Options.VIPDir/<vip>/).
type File struct {
	Name string
	Data []byte
}

// Backend names one HAProxy backend of a VIP: the health side looks its
// servers up by Name on the admin socket.
type Backend struct {
	Name    string
	Service string
	// Port is the servers' port.
	Port int
	// MinUp is how many servers must be up (model.Backend.MinUp).
	MinUp int
}

// Render returns the files of one VIP: haproxy.cfg first, then the crt-lists
// it refers to, sorted by name. All problems found are returned, joined.
func Render(site *model.Site, vip *model.VIP, opts Options) ([]File, error) {
	files, _, err := RenderVIP(site, vip, opts)
	return files, err
}

// RenderVIP is Render and Backends in one pass: the files of one VIP and
// the backends they name.
func RenderVIP(site *model.Site, vip *model.VIP, opts Options) ([]File, []Backend, error) {
	r, err := newVIPRender(site, vip, opts.withDefaults())
	if err != nil {
		return nil, nil, err
	}
	r.render()
	if err := r.w.Err(); err != nil {
		r.errs = append(r.errs, err)
	}
	if err := r.err(); err != nil {
		return nil, nil, err
	}
	files := []File{{Name: ConfigName, Data: r.w.Bytes()}}
	slices.SortFunc(r.extra, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return append(files, r.extra...), r.backendList(), nil
}

// Backends lists the backends Render names for vip, sorted by name.
func Backends(site *model.Site, vip *model.VIP) ([]Backend, error) {
	r, err := newVIPRender(site, vip, Options{}.withDefaults())
	if err != nil {
		return nil, err
	}
	return r.backendList(), nil
}

// backendList is the backends of r, sorted by name.
func (r *vipRender) backendList() []Backend {
	var out []Backend
	for _, b := range r.backends {
		out = append(out, Backend{Name: b.name, Service: b.svc.Name, Port: b.port, MinUp: b.svc.Backend.MinUp})
	}
	slices.SortFunc(out, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// service is a service of the VIP with its names in the configuration.
type service struct {
	*model.Service
	// id is the sanitised, unique name used in ACL and backend names.
	id string
}

// backend is one backend: a service's servers on one port.
type backend struct {
	name string
	svc  *service
	port int
}

// vipRender holds the state of rendering one VIP.
type vipRender struct {
	site *model.Site
	vip  *model.VIP
	opts Options

	addrs    []netip.Addr
	services []*service          // in vip.Services order
	byName   map[string]*service // by model name
	backends []*backend
	// base is the TLS policy in the global section (of the first TLS
	// service); hasBase says whether there is one.
	base    policy
	hasBase bool

	w     *text.Writer
	extra []File
	errs  []error
}

func newVIPRender(site *model.Site, vip *model.VIP, opts Options) (*vipRender, error) {
	r := &vipRender{site: site, vip: vip, opts: opts, byName: map[string]*service{}, w: text.NewWriter("    ")}
	for _, a := range vip.Addresses {
		if !model.PlainAddr(a) {
			r.fail("address %q: not a plain IPv4 or IPv6 address", a)
			continue
		}
		r.addrs = append(r.addrs, a)
	}
	if len(vip.Addresses) == 0 {
		r.fail("no addresses")
	}
	ids := text.Unique(vip.Services, func(s string) string { return text.Identifier(s, "") })
	for _, name := range vip.Services {
		ms := site.Service(name)
		if ms == nil {
			r.fail("service %s: not in the site", name)
			continue
		}
		if ms.VIP != vip.Name {
			r.fail("service %s: bound to VIP %s", name, ms.VIP)
		}
		s := &service{Service: ms, id: ids[name]}
		r.services = append(r.services, s)
		r.byName[name] = s
		r.checkService(s)
	}
	for _, s := range r.services {
		var ports []int
		for _, l := range s.Listeners {
			if l.Action == model.ActionServe {
				ports = append(ports, backendPort(s, l))
			}
		}
		slices.Sort(ports)
		for _, p := range slices.Compact(ports) {
			r.backends = append(r.backends, &backend{name: fmt.Sprintf("%s:%d", s.id, p), svc: s, port: p})
		}
	}
	for _, s := range r.services {
		if s.TLS != nil && hasTLSListener(s) {
			p, err := tlsPolicy(s.TLS)
			if err == nil {
				r.base, r.hasBase = p, true
				break
			}
		}
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *vipRender) fail(format string, a ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, a...))
}

// word returns v as one word of a configuration line (text.HAProxyWord),
// or, with logFormat, of a log-format argument (text.HAProxyLogFormat); a
// value that cannot be written fails the render.
func (r *vipRender) word(v string, logFormat bool) string {
	quote := text.HAProxyWord
	if logFormat {
		quote = text.HAProxyLogFormat
	}
	q, err := quote(v)
	if err != nil {
		r.fail("%v", err)
		return "''"
	}
	return q
}

func (r *vipRender) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("haproxy: vip %s: %w", r.vip.Name, errors.Join(r.errs...))
}

// checkService reports what the renderer cannot express.
func (r *vipRender) checkService(s *service) {
	switch s.Mode {
	case model.ModeHTTP, model.ModeTCP:
	default:
		r.fail("service %s: unknown mode %q", s.Name, s.Mode)
	}
	for _, l := range s.Listeners {
		if l.Port < 1 || l.Port > 65535 {
			r.fail("service %s: port %d out of range", s.Name, l.Port)
		}
		switch l.Action {
		case model.ActionServe:
			if p := backendPort(s, l); p < 1 || p > 65535 {
				r.fail("service %s: listener %d: backend port %d out of range", s.Name, l.Port, p)
			}
		case model.ActionRedirectHTTPS:
			if s.Mode != model.ModeHTTP {
				r.fail("service %s: listener %d: redirect to https needs mode http", s.Name, l.Port)
			}
		default:
			r.fail("service %s: listener %d: unknown action %q", s.Name, l.Port, l.Action)
		}
		if l.TLS && s.TLS == nil {
			r.fail("service %s: listener %d terminates TLS but the service has no TLS policy", s.Name, l.Port)
		}
	}
	if s.TLS != nil && hasTLSListener(s) {
		if _, err := tlsPolicy(s.TLS); err != nil {
			r.fail("service %s: %v", s.Name, err)
		}
		if s.TLS.Certificate == "" || strings.ContainsAny(s.TLS.Certificate, "/ \t\n") {
			r.fail("service %s: certificate name %q: want a file name without '/' or blanks", s.Name, s.TLS.Certificate)
		}
	}
	r.checkBackend(s)
	r.checkTexts(s)
}

// checkBackend checks the enums and addresses of s's backend.
func (r *vipRender) checkBackend(s *service) {
	switch s.Backend.Check.Type {
	case model.CheckHTTP, model.CheckTCP, model.CheckSMTP, model.CheckLDAP, model.CheckNone, "":
	default:
		r.fail("service %s: unknown check type %q", s.Name, s.Backend.Check.Type)
	}
	if s.Backend.Check.Type == model.CheckHTTP {
		if _, err := expectStatus(s.Backend.Check.ExpectStatus); err != nil {
			r.fail("service %s: %v", s.Name, err)
		}
	}
	switch s.Backend.Proxy {
	case model.ProxyNone, model.ProxyV1, model.ProxyV2, "":
	default:
		r.fail("service %s: unknown proxy protocol %q", s.Name, s.Backend.Proxy)
	}
	switch s.Backend.Balance {
	case "roundrobin", "leastconn", "source", "":
	default:
		r.fail("service %s: unknown balance algorithm %q", s.Name, s.Backend.Balance)
	}
	for _, src := range s.AllowedSources {
		if !src.IsValid() {
			r.fail("service %s: allowed source unset", s.Name)
		}
	}
	for _, srv := range s.Backend.Servers {
		if a := srv.Address; !a.IsValid() || a.Zone() != "" {
			r.fail("service %s: server %s: address %q: not an IP address", s.Name, srv.Name, a)
		}
	}
}

// checkTexts checks the redirects, host names and check path of s: none
// may hold blanks or quotes that would end a word in haproxy.cfg.
func (r *vipRender) checkTexts(s *service) {
	for _, rd := range s.Redirects {
		if !strings.HasPrefix(rd.From, "/") || strings.ContainsAny(rd.From, " \t\n\"'\\{}#") {
			r.fail("service %s: redirect from %q: want a path without blanks or quotes", s.Name, rd.From)
		}
		// The target is quoted (word); blanks are refused all the same,
		// a Location header cannot carry them.
		if rd.To == "" || strings.ContainsAny(rd.To, " \t\r\n") {
			r.fail("service %s: redirect to %q: want a URL or path without blanks", s.Name, rd.To)
		}
		switch rd.Code {
		case 301, 302, 303, 307, 308:
		default:
			r.fail("service %s: redirect %s: code %d: want 301, 302, 303, 307 or 308", s.Name, rd.From, rd.Code)
		}
	}
	for _, h := range append([]string{s.FQDN, s.Backend.Check.Host}, s.Aliases...) {
		if strings.ContainsAny(h, " \t\n\"'\\{}#") {
			r.fail("service %s: host name %q has blanks or quotes", s.Name, h)
		}
	}
	if strings.ContainsAny(s.Backend.Check.Path, " \t\n\"'\\{}#") {
		r.fail("service %s: check path %q has blanks or quotes", s.Name, s.Backend.Check.Path)
	}
}

func hasTLSListener(s *service) bool {
	for _, l := range s.Listeners {
		if l.TLS {
			return true
		}
	}
	return false
}

// backendPort is the servers' port for a listener.
func backendPort(s *service, l model.Listener) int {
	if l.BackendPort != 0 {
		return l.BackendPort
	}
	return s.Backend.Port
}

func (s *service) listener(port int) (model.Listener, bool) {
	for _, l := range s.Listeners {
		if l.Port == port {
			return l, true
		}
	}
	return model.Listener{}, false
}

func (r *vipRender) backendFor(s *service, port int) string {
	for _, b := range r.backends {
		if b.svc == s && b.port == port {
			return b.name
		}
	}
	return ""
}

// render writes the whole configuration.
func (r *vipRender) render() {
	w := r.w
	w.Line("# HAProxy configuration of VIP %s (site %s), rendered by lbctl. Do not edit.", r.vip.Name, r.site.Name)
	w.Line("# Services: %s", strings.Join(r.vip.Services, " "))
	w.Line("")
	r.global()
	w.Line("")
	r.defaults()
	for _, p := range r.vip.Ports {
		w.Line("")
		r.frontend(p)
	}
	for _, b := range r.backends {
		w.Line("")
		r.backend(b)
	}
}

func (r *vipRender) global() {
	w := r.w
	w.Line("global")
	w.In()
	w.Line("master-worker")
	// Under systemd (Type=notify) stdout goes to the journal.
	w.Line("log stdout format raw local0")
	// Server and backend state changes (notice and above, not the
	// traffic logs) to the agent, which then reads this VIP's state at
	// once (health/haproxy.Events); the tag names the VIP.
	w.Line("log %s len 1024 format rfc5424 local0 notice", r.word("unix@"+EventsSocket(r.opts.RuntimeDir), false))
	w.Line("log-tag %s", r.word(r.vip.Name, false))
	w.Line("stats socket %s mode 600 level admin", r.word(AdminSocket(r.opts.RuntimeDir, r.vip.Name), false))
	w.Line("stats timeout 30s")
	w.Line("maxconn %d", r.opts.MaxConn)
	threads := r.threads()
	w.Line("nbthread %d", threads)
	for t, cpu := range r.cpus(threads) {
		w.Line("cpu-map 1/%d %d", t+1, cpu)
	}
	if r.sharesChecks() {
		w.Line("spread-checks 25")
	}
	w.Line("hard-stop-after %s", text.Duration(int(hardStopAfter(r.opts.HardStopAfter, r.services)/time.Millisecond)))
	// HAProxy 2.6 loads the system's CA store at every start, check and
	// reload for its internal HTTP client (Lua, later OCSP and ACME),
	// which lbctl's configurations never use: 50 of the 60 ms of CPU a
	// plain VIP's config costs to parse, once per `haproxy -c`, start and
	// reload. Without verification the client loads no CA at all.
	w.Line("httpclient.ssl.verify none")
	if r.hasBase {
		w.Line("tune.ssl.default-dh-param 2048")
		if r.base.ciphers != "" {
			w.Line("ssl-default-bind-ciphers %s", r.base.ciphers)
		}
		w.Line("ssl-default-bind-ciphersuites %s", r.base.suites)
		w.Line("ssl-default-bind-options ssl-min-ver %s no-tls-tickets", r.base.minVer)
	}
	w.Out()
}

// threads is the VIP's HAProxy thread count: the node's override, else the
// model's (rule I27), at least 1.
func (r *vipRender) threads() int {
	if r.opts.Threads > 0 {
		return r.opts.Threads
	}
	return max(1, r.vip.Threads)
}

// cpus returns the core of each of the VIP's threads: the threads of all
// VIPs, in the site's VIP order, dealt round-robin over opts.CPUs cores
// (nil when CPUs is 0).
func (r *vipRender) cpus(threads int) []int {
	if r.opts.CPUs <= 0 {
		return nil
	}
	first := 0
	for _, v := range r.site.VIPs {
		if v.Name == r.vip.Name {
			break
		}
		if r.opts.Threads > 0 {
			first += r.opts.Threads
		} else {
			first += max(1, v.Threads)
		}
	}
	out := make([]int, threads)
	for t := range out {
		out[t] = (first + t) % r.opts.CPUs
	}
	return out
}

// hardStopAfter is a VIP's hard-stop-after (inference rule I26): the
// longest client, server or tunnel timeout of its services, at least floor.
// After a reload the old worker keeps its open connections; each ends at the
// latest once it has been idle for its timeout, so stopping the worker
// earlier would cut connections the intents allow, such as an ERP's 8h
// sessions.
func hardStopAfter(floor time.Duration, svcs []*service) time.Duration {
	d := floor
	for _, s := range svcs {
		t := s.Timeouts
		d = max(d, time.Duration(max(t.ClientMS, t.ServerMS, t.TunnelMS))*time.Millisecond)
	}
	return d
}

func (r *vipRender) defaults() {
	w := r.w
	w.Line("defaults")
	w.In()
	w.Line("log global")
	w.Line("option dontlognull")
	w.Line("timeout connect 5s")
	w.Line("timeout client 30s")
	w.Line("timeout server 30s")
	w.Line("timeout http-request 10s")
	w.Line("timeout http-keep-alive 10s")
	w.Line("timeout queue 30s")
	w.Line("timeout check 5s")
	w.Out()
}
