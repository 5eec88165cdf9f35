package model

import (
	"slices"
	"strings"
)

// CertificateUse is one certificate the site's VIPs need on every node: the
// file <cert_dir>/<Name>.pem (chain and key), which never travels in a
// bundle.
type CertificateUse struct {
	// Name is the services' tls.certificate.
	Name string `json:"name"`
	// VIPs and Services use it (sorted).
	VIPs     []string `json:"vips"`
	Services []string `json:"services"`
	// Hosts are the names it must cover: the services' FQDNs and aliases
	// (sorted, unique).
	Hosts []string `json:"hosts"`
}

// Certificates lists the certificates the site's services terminate TLS
// with, sorted by name. It is what a node checks before an install and
// what `lbctl inspect` lists.
func (s *Site) Certificates() []CertificateUse {
	byName := map[string]*CertificateUse{}
	var names []string
	for _, sv := range s.Services {
		if sv.TLS == nil || sv.TLS.Certificate == "" {
			continue
		}
		u := byName[sv.TLS.Certificate]
		if u == nil {
			u = &CertificateUse{Name: sv.TLS.Certificate}
			byName[u.Name] = u
			names = append(names, u.Name)
		}
		u.VIPs = append(u.VIPs, sv.VIP)
		u.Services = append(u.Services, sv.Name)
		u.Hosts = append(append(u.Hosts, sv.FQDN), sv.Aliases...)
	}
	slices.Sort(names)
	out := make([]CertificateUse, 0, len(names))
	for _, n := range names {
		u := byName[n]
		for _, l := range []*[]string{&u.VIPs, &u.Services, &u.Hosts} {
			slices.Sort(*l)
			*l = slices.Compact(*l)
		}
		out = append(out, *u)
	}
	return out
}

// Uses reports whether the certificate is used by one of the VIPs for
// which has returns true.
func (u CertificateUse) Uses(has func(vip string) bool) bool {
	return slices.ContainsFunc(u.VIPs, has)
}

// NeededBy says who needs the certificate: "needed by VIP a, b: svc1,
// svc2", for the errors of an install and of doctor.
func (u CertificateUse) NeededBy() string {
	return "needed by VIP " + strings.Join(u.VIPs, ", ") + ": " + strings.Join(u.Services, ", ")
}
