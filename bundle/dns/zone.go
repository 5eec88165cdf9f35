package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// Zone holds the A, AAAA and CNAME records of a master file. It is
// immutable after parsing, safe for concurrent use and implements Resolver.
// Wildcard owners ("*.apps") answer for names that do not exist otherwise,
// as in RFC 4592.
type Zone struct {
	path  string
	names map[string]*owner
	// exists holds every owner name and each of its ancestors (empty
	// non-terminals), which stop wildcards from matching.
	exists map[string]bool
}

type owner struct {
	addrs []netip.Addr
	cname string
	// other is the type of another record at the name (MX, TXT...), for the
	// CNAME-and-other-data check; 0 when none.
	other uint16
}

// LoadZone reads the master file at path. Names in it must be absolute or
// follow an $ORIGIN directive; $INCLUDE is allowed, relative to the file.
func LoadZone(path string) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("zone: %w", err)
	}
	defer f.Close()
	return ParseZone(path, f, ".")
}

// ParseZone reads a master file (RFC 1035: $ORIGIN, $TTL, $INCLUDE,
// relative names, owners carried over from the previous line). origin
// applies until an $ORIGIN directive; "" means the root. path names the
// file in errors, which read "path:line:col: message".
func ParseZone(path string, r io.Reader, origin string) (*Zone, error) {
	if origin == "" {
		origin = "."
	}
	origin = strings.ToLower(mdns.Fqdn(origin))
	z := &Zone{path: path, names: map[string]*owner{}, exists: map[string]bool{}}
	zp := mdns.NewZoneParser(r, origin, path)
	zp.SetIncludeAllowed(true)
	var errs []error
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if err := z.add(rr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	if err := zp.Err(); err != nil {
		return nil, zoneParseError(path, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return z, nil
}

func (z *Zone) add(rr mdns.RR) error {
	h := rr.Header()
	if h.Class != mdns.ClassINET {
		return nil
	}
	name := strings.ToLower(h.Name)
	o := z.names[name]
	if o == nil {
		o = &owner{}
		z.names[name] = o
		for n := name; ; {
			z.exists[n] = true
			i, end := mdns.NextLabel(n, 0)
			if end {
				break
			}
			n = n[i:]
		}
	}
	switch r := rr.(type) {
	case *mdns.A, *mdns.AAAA:
		a, ok := addrOf(rr)
		if !ok {
			return fmt.Errorf("%s: bad address record %s", name, rr)
		}
		o.addrs = append(o.addrs, a)
	case *mdns.CNAME:
		target := strings.ToLower(r.Target)
		if o.cname != "" && o.cname != target {
			return fmt.Errorf("%s: several CNAME records (%s and %s)", name, o.cname, target)
		}
		o.cname = target
	case *mdns.RRSIG, *mdns.NSEC, *mdns.NSEC3:
		// DNSSEC records may sit beside a CNAME.
	default:
		o.other = h.Rrtype
	}
	switch {
	case o.cname != "" && len(o.addrs) > 0:
		return fmt.Errorf("%s: CNAME and address records at the same name", name)
	case o.cname != "" && o.other != 0:
		return fmt.Errorf("%s: CNAME and %s records at the same name", name, mdns.TypeToString[o.other])
	}
	return nil
}

// parseErrorText matches miekg/dns's ParseError text:
// `file: dns: message: "token" at line: L:C`.
var parseErrorText = regexp.MustCompile(`^(?:(.*): )?dns: (.*): ("(?:[^"\\]|\\.)*") at line: (\d+):(\d+)$`)

// zoneParseError rewrites a zone parser error as "file:line:col: message".
// The file is the one the error is in, which differs from path inside an
// $INCLUDE.
func zoneParseError(path string, err error) error {
	var pe *mdns.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", path, err)
	}
	m := parseErrorText.FindStringSubmatch(pe.Error())
	if m == nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	file, msg, token, line, col := m[1], m[2], m[3], m[4], m[5]
	if file == "" {
		file = path
	}
	if token != `""` {
		msg += " at " + token
	}
	return fmt.Errorf("%s:%s:%s: %s", file, line, col, msg)
}

// Lookup returns the addresses of name in the zone, following CNAMEs
// within it. A CNAME to a name outside the zone's data does not resolve.
func (z *Zone) Lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := canonical(name)
	if err != nil {
		return nil, err
	}
	chain := []string{q}
	for {
		o := z.find(q)
		switch {
		case o == nil:
			return nil, notFound(name, chain, "no such name")
		case o.cname != "":
			q = o.cname
			if len(chain) > maxCNAME || slices.Contains(chain, q) {
				return nil, fmt.Errorf("%s: %s: %w", name, strings.Join(append(chain, q), " -> "), ErrCNAMELoop)
			}
			chain = append(chain, q)
		case len(o.addrs) == 0:
			return nil, notFound(name, chain, "no A or AAAA records")
		default:
			return sortAddrs(o.addrs), nil
		}
	}
}

func notFound(name string, chain []string, why string) error {
	if len(chain) > 1 {
		return fmt.Errorf("%s: %s via %s: %w", name, why, strings.Join(chain, " -> "), ErrNotFound)
	}
	return fmt.Errorf("%s: %s: %w", name, why, ErrNotFound)
}

// find returns the records at name, or those of the wildcard of its
// closest existing ancestor when name itself does not exist.
func (z *Zone) find(name string) *owner {
	if o, ok := z.names[name]; ok {
		return o
	}
	if z.exists[name] {
		return nil // an empty non-terminal
	}
	for n := name; ; {
		i, end := mdns.NextLabel(n, 0)
		if end {
			return nil
		}
		n = n[i:]
		if z.exists[n] {
			return z.names["*."+n]
		}
	}
}

// Names returns the owner names that have address or CNAME records, for
// diagnostics and tests.
func (z *Zone) Names() []string {
	var out []string
	for n, o := range z.names {
		if len(o.addrs) > 0 || o.cname != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
