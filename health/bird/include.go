package bird

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// includeHeader starts every include file the Announcer writes.
const includeHeader = "# Written by the lbctl agent: the VIP routes this node announces. Do not edit.\n"

// RenderInclude renders the body of an announcement include file: one
// "route PREFIX blackhole;" line per prefix, sorted, without duplicates.
// With no prefixes it is a comment only, which BIRD accepts inside a static
// protocol. The include statement must stand on a line of its own in
// bird.conf (BIRD's lexer only recognises it there).
func RenderInclude(prefixes []netip.Prefix) []byte { return renderInclude(prefixes, false) }

// GracefulShutdownAttr is the route attribute block that marks a route
// with the GRACEFUL_SHUTDOWN community (RFC 8326, 65535:0): bird.conf's
// export filters lower its local preference to 0 on iBGP, and receivers
// (the route reflector stanzas lbctl renders) do the same.
const GracefulShutdownAttr = "{ bgp_community.add((65535,0)); }"

// renderInclude is RenderInclude; with gshut every route carries
// GRACEFUL_SHUTDOWN.
func renderInclude(prefixes []netip.Prefix, gshut bool) []byte {
	ps := SortPrefixes(append([]netip.Prefix(nil), prefixes...))
	var b bytes.Buffer
	b.WriteString(includeHeader)
	for _, p := range ps {
		if gshut {
			fmt.Fprintf(&b, "route %s blackhole %s;\n", p, GracefulShutdownAttr)
		} else {
			fmt.Fprintf(&b, "route %s blackhole;\n", p)
		}
	}
	return b.Bytes()
}

// SplitFamilies validates prefixes and splits them into sorted, duplicate-free
// IPv4 and IPv6 sets. A prefix must be canonical (no host bits set) and must
// not be an IPv4-mapped IPv6 address.
func SplitFamilies(prefixes []netip.Prefix) (v4, v6 []netip.Prefix, err error) {
	var errs []error
	for _, p := range prefixes {
		switch {
		case !p.IsValid():
			errs = append(errs, fmt.Errorf("invalid prefix %q", p))
		case p.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("prefix %s: IPv4-mapped IPv6 address", p))
		case p != p.Masked():
			errs = append(errs, fmt.Errorf("prefix %s: host bits set (want %s)", p, p.Masked()))
		case p.Addr().Is4():
			v4 = append(v4, p)
		default:
			v6 = append(v6, p)
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("bird: %w", errors.Join(errs...))
	}
	return SortPrefixes(v4), SortPrefixes(v6), nil
}

// ReadInclude returns the prefixes of an include file RenderInclude wrote
// (none when the file is missing); a line it cannot read is an error.
func ReadInclude(path string) ([]netip.Prefix, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bird: reading %s: %w", path, err)
	}
	var out []netip.Prefix
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "route" || f[2] != "blackhole" && f[2] != "blackhole;" {
			return nil, fmt.Errorf("bird: %s:%d: not a route line: %q", path, i+1, line)
		}
		p, err := netip.ParsePrefix(f[1])
		if err != nil {
			return nil, fmt.Errorf("bird: %s:%d: %w", path, i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}
