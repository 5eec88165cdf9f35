package haproxy

import (
	"fmt"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
)

// Cipher profiles from Mozilla's server side TLS recommendations (version
// 5.7). TLS 1.3 suites are the same for every profile.
const (
	suitesTLS13 = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

	ciphersIntermediate = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" +
		"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" +
		"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" +
		"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

	ciphersOld = ciphersIntermediate + ":" +
		"ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:" +
		"ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:" +
		"DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:" +
		"AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA"
)

// policy is a TLS policy in HAProxy's terms.
type policy struct {
	// minVer is "TLSv1.2" or "TLSv1.3".
	minVer string
	// ciphers for TLS 1.2 and below; empty when minVer is TLSv1.3.
	ciphers string
	suites  string
}

// tlsPolicy maps a service's TLS policy to HAProxy settings. The "modern"
// profile is TLS 1.3 only (as Mozilla defines it), whatever MinVersion says;
// "old" keeps MinVersion as the floor (TLS 1.0 and 1.1 are not offered).
func tlsPolicy(t *model.TLS) (policy, error) {
	var p policy
	switch t.MinVersion {
	case "1.2", "":
		p.minVer = "TLSv1.2"
	case "1.3":
		p.minVer = "TLSv1.3"
	default:
		return p, fmt.Errorf("tls min_version %q: want 1.2 or 1.3", t.MinVersion)
	}
	p.suites = suitesTLS13
	switch t.CipherProfile {
	case "modern":
		p.minVer = "TLSv1.3"
	case "intermediate", "":
		p.ciphers = ciphersIntermediate
	case "old":
		p.ciphers = ciphersOld
	default:
		return p, fmt.Errorf("tls cipher_profile %q: want modern, intermediate or old", t.CipherProfile)
	}
	if p.minVer == "TLSv1.3" {
		p.ciphers = ""
	}
	return p, nil
}

// options returns the bind (or crt-list) keywords that turn base into p;
// empty when they are equal.
func (p policy) options(base policy) string {
	var kw []string
	if p.minVer != base.minVer {
		kw = append(kw, "ssl-min-ver "+p.minVer)
	}
	if p.ciphers != "" && p.ciphers != base.ciphers {
		kw = append(kw, "ciphers "+p.ciphers)
	}
	if p.suites != base.suites {
		kw = append(kw, "ciphersuites "+p.suites)
	}
	return strings.Join(kw, " ")
}
