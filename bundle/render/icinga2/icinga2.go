// Package icinga2 renders Icinga 2 monitoring objects for a site: a Host per
// VIP address with a Service per listener (http with virtual host, TLS and
// SNI for web listeners, tcp for plain tcp ones, ssl with certificate
// expiry for every port the LB terminates TLS on), a Host per backend server
// with a check of each service port it serves, and Users and UserGroups
// from the services' contacts and owners, notified through apply rules.
//
// The objects use only the Icinga Template Library's check commands (http,
// tcp, ssl, smtp, hostalive4, hostalive6); notification commands are named
// by Options (Debian's default configuration defines the defaults).
//
// The package is pure: it never reads files, the clock or the network.
package icinga2

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render"
	"github.com/lbctl/lbctl/bundle/render/internal/text"
)

// Options of the rendered objects; zero values mean the defaults.
type Options struct {
	// CertWarnDays and CertCritDays: days of certificate validity left
	// below which the ssl checks warn (default 30) or fail (default 14).
	CertWarnDays, CertCritDays int
	// HostNotificationCommand and ServiceNotificationCommand name the
	// NotificationCommands used for contacts (defaults
	// "mail-host-notification" and "mail-service-notification", from
	// Debian's /etc/icinga2/conf.d/commands.conf).
	HostNotificationCommand, ServiceNotificationCommand string
}

func (o Options) withDefaults() Options {
	if o.CertWarnDays <= 0 {
		o.CertWarnDays = 30
	}
	if o.CertCritDays <= 0 {
		o.CertCritDays = 14
	}
	if o.HostNotificationCommand == "" {
		o.HostNotificationCommand = "mail-host-notification"
	}
	if o.ServiceNotificationCommand == "" {
		o.ServiceNotificationCommand = "mail-service-notification"
	}
	return o
}

// File is one rendered file, Path relative and slash-separated: the same
// type as the node renderer's.
type File = render.File

// Paths of the rendered files (include the directory with
// include_recursive).
const (
	TemplatesFile = "templates.conf"
	UsersFile     = "users.conf"
	BackendsFile  = "backends.conf"
	VIPDir        = "vips"
)

// Object name prefixes.
const (
	VIPHostPrefix     = "vip-"
	BackendHostPrefix = "backend-"
)

// Render returns the Icinga 2 configuration files of the site, sorted by
// path.
func Render(site *model.Site, opts Options) ([]File, error) {
	opts = opts.withDefaults()
	r := &renderer{site: site, opts: opts}
	files := []File{
		{Path: TemplatesFile, Data: r.templates()},
		{Path: UsersFile, Data: r.users()},
		{Path: BackendsFile, Data: r.backends()},
	}
	for i := range site.VIPs {
		v := &site.VIPs[i]
		files = append(files, File{Path: path.Join(VIPDir, text.Identifier(v.Name, "")+".conf"), Data: r.vip(v)})
	}
	if len(r.errs) > 0 {
		return nil, fmt.Errorf("icinga2: %w", errors.Join(r.errs...))
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

type renderer struct {
	site *model.Site
	opts Options
	errs []error
}

// bytes returns what w wrote; a line w refused fails the render.
func (r *renderer) bytes(w *text.Writer) []byte {
	if err := w.Err(); err != nil {
		r.errs = append(r.errs, err)
	}
	return w.Bytes()
}

func (r *renderer) fail(format string, a ...any) { r.errs = append(r.errs, fmt.Errorf(format, a...)) }

// quote returns s as an Icinga 2 string literal.
func (r *renderer) quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '$':
			// Icinga expands $macros$ in strings; a literal dollar is $$.
			b.WriteString("$$")
		case c < 0x20 || c == 0x7f:
			r.fail("string %q: control character", s)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (r *renderer) list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = r.quote(s)
	}
	return "[ " + strings.Join(q, ", ") + " ]"
}

// name checks an object name: Icinga 2 joins host and service names with
// '!', so it cannot appear in either.
func (r *renderer) name(s string) string {
	if strings.Contains(s, "!") || s == "" {
		r.fail("object name %q: empty or contains '!'", s)
	}
	return r.quote(s)
}

func header(w *text.Writer, what, site string) {
	w.Line("// %s of site %s, rendered by lbctl. Do not edit.", what, site)
	w.Line("")
}

func (r *renderer) templates() []byte {
	w := text.NewWriter("\t")
	header(w, "Templates and notification rules", r.site.Name)
	for _, kind := range []string{"Host", "Service"} {
		w.Line("template %s \"lbctl-%s\" {", kind, strings.ToLower(kind))
		w.In()
		w.Line("max_check_attempts = 3")
		w.Line("check_interval = 1m")
		w.Line("retry_interval = 30s")
		w.Out()
		w.Line("}")
		w.Line("")
	}
	for _, n := range []struct{ kind, obj, cmd string }{
		{"Host", "host", r.opts.HostNotificationCommand},
		{"Service", "service", r.opts.ServiceNotificationCommand},
	} {
		w.Line("apply Notification \"lbctl-contacts\" to %s {", n.kind)
		w.In()
		w.Line("command = %s", r.quote(n.cmd))
		w.Line("users = %s.vars.lbctl_contacts", n.obj)
		w.Line("assign where %s.vars.lbctl_contacts", n.obj)
		w.Out()
		w.Line("}")
		if n.kind == "Host" {
			w.Line("")
		}
	}
	return r.bytes(w)
}

func (r *renderer) users() []byte {
	groups := map[string][]string{} // contact -> owners
	owners := map[string]bool{}
	for _, s := range r.site.Services {
		if s.Owner != "" {
			owners[s.Owner] = true
		}
		for _, c := range s.Contacts {
			if s.Owner != "" && !slices.Contains(groups[c], s.Owner) {
				groups[c] = append(groups[c], s.Owner)
			} else if _, ok := groups[c]; !ok {
				groups[c] = nil
			}
		}
	}
	w := text.NewWriter("\t")
	header(w, "Owners (user groups) and contacts (users)", r.site.Name)
	for _, o := range slices.Sorted(maps.Keys(owners)) {
		w.Line("object UserGroup %s {", r.name(o))
		w.In()
		w.Line("display_name = %s", r.quote("Owner "+o))
		w.Out()
		w.Line("}")
		w.Line("")
	}
	for i, c := range slices.Sorted(maps.Keys(groups)) {
		if i > 0 {
			w.Line("")
		}
		w.Line("object User %s {", r.name(c))
		w.In()
		w.Line("email = %s", r.quote(c))
		if g := groups[c]; len(g) > 0 {
			slices.Sort(g)
			w.Line("groups = %s", r.list(g))
		}
		w.Out()
		w.Line("}")
	}
	return r.bytes(w)
}

// hostIP writes address or address6 of ip.
func (r *renderer) hostIP(w *text.Writer, ip netip.Addr) {
	if ip.Unmap().Is4() {
		w.Line("check_command = \"hostalive4\"")
		w.Line("address = %s", r.quote(ip.Unmap().String()))
	} else {
		w.Line("check_command = \"hostalive6\"")
		w.Line("address6 = %s", r.quote(ip.String()))
	}
}

func (r *renderer) vip(v *model.VIP) []byte {
	w := text.NewWriter("\t")
	header(w, "VIP "+v.Name, r.site.Name)
	var contacts, owners []string
	for _, name := range v.Services {
		if s := r.site.Service(name); s != nil {
			contacts = append(contacts, s.Contacts...)
			if s.Owner != "" {
				owners = append(owners, s.Owner)
			}
		}
	}
	slices.Sort(contacts)
	contacts = slices.Compact(contacts)
	slices.Sort(owners)
	owners = slices.Compact(owners)
	for i, ip := range v.Addresses {
		if !ip.IsValid() {
			r.fail("vip %s: address %q: not an IP address", v.Name, ip)
			continue
		}
		host := VIPHostPrefix + ip.String()
		if i > 0 {
			w.Line("")
		}
		w.Line("object Host %s {", r.name(host))
		w.In()
		w.Line("import \"lbctl-host\"")
		w.Line("display_name = %s", r.quote(fmt.Sprintf("VIP %s (%s)", ip, strings.Join(v.Services, ", "))))
		r.hostIP(w, ip)
		w.Line("vars.lbctl_site = %s", r.quote(r.site.Name))
		w.Line("vars.lbctl_vip = %s", r.quote(v.Name))
		w.Line("vars.lbctl_services = %s", r.list(v.Services))
		if len(owners) > 0 {
			w.Line("vars.lbctl_owners = %s", r.list(owners))
		}
		if len(contacts) > 0 {
			w.Line("vars.lbctl_contacts = %s", r.list(contacts))
		}
		w.Out()
		w.Line("}")
		for _, name := range v.Services {
			s := r.site.Service(name)
			if s == nil {
				r.fail("vip %s: service %s: not in the site", v.Name, name)
				continue
			}
			for _, l := range s.Listeners {
				if (ip.Unmap().Is4() && !l.IPv4) || (!ip.Unmap().Is4() && !l.IPv6) {
					continue
				}
				r.listener(w, host, s, l)
			}
		}
	}
	return r.bytes(w)
}

// listener writes the checks of one listener on one VIP address.
func (r *renderer) listener(w *text.Writer, host string, s *model.Service, l model.Listener) {
	svc := fmt.Sprintf("%s:%d", s.Name, l.Port)
	begin := func(name, display, command string) {
		w.Line("")
		w.Line("object Service %s {", r.name(name))
		w.In()
		w.Line("import \"lbctl-service\"")
		w.Line("host_name = %s", r.quote(host))
		w.Line("display_name = %s", r.quote(display))
		w.Line("check_command = %s", r.quote(command))
	}
	end := func() {
		w.Line("vars.lbctl_service = %s", r.quote(s.Name))
		if s.Owner != "" {
			w.Line("vars.lbctl_owner = %s", r.quote(s.Owner))
		}
		if len(s.Contacts) > 0 {
			w.Line("vars.lbctl_contacts = %s", r.list(s.Contacts))
		}
		w.Out()
		w.Line("}")
	}
	switch {
	case s.Mode == model.ModeHTTP:
		scheme := "http"
		if l.TLS {
			scheme = "https"
		}
		begin(svc, fmt.Sprintf("%s %s://%s:%d/", s.Name, scheme, s.FQDN, l.Port), "http")
		w.Line("vars.http_vhost = %s", r.quote(s.FQDN))
		w.Line("vars.http_port = %d", l.Port)
		w.Line("vars.http_uri = \"/\"")
		if l.TLS {
			w.Line("vars.http_ssl = true")
			w.Line("vars.http_sni = true")
		}
		if l.Action == model.ActionRedirectHTTPS {
			w.Line("vars.http_expect = \"301\"")
		}
		end()
	case l.TLS:
		// tcp with TLS on the LB: the handshake is the check.
	default:
		begin(svc, fmt.Sprintf("%s tcp %d", s.Name, l.Port), "tcp")
		w.Line("vars.tcp_port = %d", l.Port)
		end()
	}
	if l.TLS {
		begin(svc+" certificate", fmt.Sprintf("%s TLS certificate on %d", s.Name, l.Port), "ssl")
		w.Line("vars.ssl_port = %d", l.Port)
		w.Line("vars.ssl_sni = %s", r.quote(s.FQDN))
		w.Line("vars.ssl_cert_valid_days_warn = %d", r.opts.CertWarnDays)
		w.Line("vars.ssl_cert_valid_days_critical = %d", r.opts.CertCritDays)
		end()
	}
}

var exactStatus = regexp.MustCompile(`^[1-5][0-9][0-9]$`)
var classStatus = regexp.MustCompile(`^([1-5])[xX][xX]$`)

// httpExpect maps the model's status expression to check_http's -e (strings
// expected in the status line); "" keeps check_http's default (2xx, 3xx).
func httpExpect(e string) string {
	var out []string
	for _, part := range strings.FieldsFunc(e, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch {
		case exactStatus.MatchString(part):
			out = append(out, part)
		case classStatus.MatchString(part):
			c := classStatus.FindStringSubmatch(part)[1]
			out = append(out, "HTTP/1.0 "+c, "HTTP/1.1 "+c)
		default:
			return ""
		}
	}
	return strings.Join(out, ",")
}

// backendPort is one port of a service a backend server serves.
type backendPort struct {
	svc  *model.Service
	port int
}

// backends writes a Host per backend server and a Service per service port
// it serves.
func (r *renderer) backends() []byte {
	addr := map[string]netip.Addr{}
	ports := map[string][]backendPort{}
	for i := range r.site.Services {
		s := &r.site.Services[i]
		ps := render.BackendPorts(s)
		for _, srv := range s.Backend.Servers {
			if a, ok := addr[srv.Name]; ok && a != srv.Address {
				r.fail("backend server %s: addresses %s and %s", srv.Name, a, srv.Address)
			}
			addr[srv.Name] = srv.Address
			for _, p := range ps {
				ports[srv.Name] = append(ports[srv.Name], backendPort{s, p})
			}
		}
	}
	w := text.NewWriter("\t")
	header(w, "Backend servers", r.site.Name)
	for i, name := range slices.Sorted(maps.Keys(addr)) {
		if i > 0 {
			w.Line("")
		}
		host := BackendHostPrefix + name
		r.backendHost(w, host, name, addr[name], ports[name])
		for _, p := range ports[name] {
			r.backendService(w, host, p)
		}
	}
	return r.bytes(w)
}

// backendHost writes the Host object of backend server name at addr.
func (r *renderer) backendHost(w *text.Writer, host, name string, addr netip.Addr, ports []backendPort) {
	var contacts, services []string
	for _, p := range ports {
		contacts = append(contacts, p.svc.Contacts...)
		services = append(services, p.svc.Name)
	}
	slices.Sort(contacts)
	contacts = slices.Compact(contacts)
	slices.Sort(services)
	services = slices.Compact(services)
	w.Line("object Host %s {", r.name(host))
	w.In()
	w.Line("import \"lbctl-host\"")
	w.Line("display_name = %s", r.quote("Backend "+name))
	if addr.IsValid() {
		r.hostIP(w, addr)
	} else {
		r.fail("backend server %s: no address", name)
	}
	w.Line("vars.lbctl_site = %s", r.quote(r.site.Name))
	w.Line("vars.lbctl_services = %s", r.list(services))
	if len(contacts) > 0 {
		w.Line("vars.lbctl_contacts = %s", r.list(contacts))
	}
	w.Out()
	w.Line("}")
}

// backendService writes the Service object checking port p of host.
func (r *renderer) backendService(w *text.Writer, host string, p backendPort) {
	s, be := p.svc, p.svc.Backend
	w.Line("")
	w.Line("object Service %s {", r.name(fmt.Sprintf("%s:%d", s.Name, p.port)))
	w.In()
	w.Line("import \"lbctl-service\"")
	w.Line("host_name = %s", r.quote(host))
	w.Line("display_name = %s", r.quote(fmt.Sprintf("%s backend port %d", s.Name, p.port)))
	switch {
	case be.Proxy == model.ProxyV1 || be.Proxy == model.ProxyV2:
		// The server expects a PROXY header: a protocol check
		// would be refused, a connect check is what works.
		w.Line("check_command = \"tcp\"")
		w.Line("vars.tcp_port = %d", p.port)
	case be.Check.Type == model.CheckHTTP:
		r.httpCheck(w, s, p.port)
	case be.Check.Type == model.CheckSMTP && p.port == be.Port:
		w.Line("check_command = \"smtp\"")
		w.Line("vars.smtp_port = %d", p.port)
	default:
		w.Line("check_command = \"tcp\"")
		w.Line("vars.tcp_port = %d", p.port)
	}
	w.Line("vars.lbctl_service = %s", r.quote(s.Name))
	if len(s.Contacts) > 0 {
		w.Line("vars.lbctl_contacts = %s", r.list(s.Contacts))
	}
	w.Out()
	w.Line("}")
}

// httpCheck writes the http check of service s's backend on port.
func (r *renderer) httpCheck(w *text.Writer, s *model.Service, port int) {
	be := s.Backend
	w.Line("check_command = \"http\"")
	vhost := be.Check.Host
	if vhost == "" {
		vhost = s.FQDN
	}
	w.Line("vars.http_vhost = %s", r.quote(vhost))
	w.Line("vars.http_port = %d", port)
	uri := be.Check.Path
	if uri == "" {
		uri = "/"
	}
	w.Line("vars.http_uri = %s", r.quote(uri))
	if be.Check.Method != "" && be.Check.Method != "GET" {
		w.Line("vars.http_method = %s", r.quote(be.Check.Method))
	}
	if e := httpExpect(be.Check.ExpectStatus); e != "" {
		w.Line("vars.http_expect = %s", r.quote(e))
	}
	if be.TLS {
		w.Line("vars.http_ssl = true")
		w.Line("vars.http_sni = true")
	}
}
