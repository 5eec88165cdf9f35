package bird

import (
	"net/netip"
	"slices"
	"strings"
)

// parseRoutes returns the networks of a "show route" reply, sorted and
// without duplicates. Table headings ("Table master4:"), next-hop lines
// ("\tvia ..."), further routes of the same network (which start with blanks)
// and attribute lines (codes 1008, 1012) carry no network and are skipped.
func parseRoutes(r *Reply) []netip.Prefix {
	var out []netip.Prefix
	for _, l := range r.Lines {
		if l.Code != CodeRouteList || l.Text == "" || l.Text[0] == ' ' || l.Text[0] == '\t' {
			continue
		}
		field, _, _ := strings.Cut(l.Text, " ")
		p, err := netip.ParsePrefix(field)
		if err != nil {
			continue
		}
		out = append(out, p)
	}
	return SortPrefixes(out)
}

// SortPrefixes sorts prefixes (IPv4 before IPv6, then by address and length)
// and removes duplicates, in place. It returns the shortened slice.
func SortPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, comparePrefix)
	return slices.Compact(ps)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
