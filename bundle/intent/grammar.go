package intent

import (
	"fmt"
	"strings"
)

// The grammars of intent strings as JSON Schema patterns, named by the
// grammar tag of a field. Each mirrors a check of the loader or the
// resolver (validHostname, certNameRE, statusRE, parsePrefix,
// netip.ParseAddr, model.Site.Validate); TestGrammarPatterns checks each
// pattern against its Go check on the same inputs. Patterns use only what
// Go's RE2 and JavaScript's regular expressions share (no lookaround, no
// inline flags), so that every validator reads them alike.

const (
	labelPattern = `[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?`
	octet        = `(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])`
	ipv4Pattern  = octet + `(?:\.` + octet + `){3}`
)

// ipv6Pattern is RFC 3986's IPv6address (what netip.ParseAddr takes,
// without a zone).
var ipv6Pattern = func() string {
	h16 := `[0-9A-Fa-f]{1,4}`
	ls32 := `(?:` + h16 + `:` + h16 + `|` + ipv4Pattern + `)`
	rep := func(n int) string {
		switch n {
		case 0:
			return ""
		case 1:
			return h16 + `:`
		}
		return fmt.Sprintf(`(?:%s:){%d}`, h16, n)
	}
	alts := []string{
		rep(6) + ls32,
		`::` + rep(5) + ls32,
		`(?:` + h16 + `)?::` + rep(4) + ls32,
	}
	for i := 1; i <= 3; i++ {
		alts = append(alts, fmt.Sprintf(`(?:(?:%s:){0,%d}%s)?::%s%s`, h16, i, h16, rep(4-i), ls32))
	}
	alts = append(alts,
		fmt.Sprintf(`(?:(?:%s:){0,4}%s)?::%s`, h16, h16, ls32),
		fmt.Sprintf(`(?:(?:%s:){0,5}%s)?::%s`, h16, h16, h16),
		fmt.Sprintf(`(?:(?:%s:){0,6}%s)?::`, h16, h16),
	)
	return `(?:` + strings.Join(alts, "|") + `)`
}()

// Prefix lengths without leading zeros (netip.ParsePrefix refuses them):
// any, and the least a monitoring prefix may have.
const (
	bits4    = `(?:3[0-2]|[12]?[0-9])`
	bits6    = `(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])`
	bits4Mon = `(?:3[0-2]|[12][0-9]|[89])`
	bits6Mon = `(?:12[0-8]|1[01][0-9]|[2-9][0-9]|1[6-9])`
)

// prefixPattern matches an IP address or an IP prefix with the lengths
// b4 and b6 allow; a bare address is a host prefix.
func prefixPattern(b4, b6 string) string {
	return `^(?:` + ipv4Pattern + `(?:/` + b4 + `)?|` + ipv6Pattern + `(?:/` + b6 + `)?)$`
}

// grammarRef refers to the grammar name in the schema's definitions
// (schemaMap adds the ones a schema refers to). The reference sits alone
// in an allOf: in draft-07, which editors implement, the keywords beside a
// $ref are ignored, and the field's description and type go beside it.
func grammarRef(name string) map[string]any {
	grammarSchema(name) // panics on an unknown grammar
	return map[string]any{"allOf": []any{map[string]any{"$ref": defsPrefix + name}}}
}

// defsPrefix is where a schema's grammars are ("definitions": draft-07's
// name; a JSON pointer, so draft 2020-12 validators find them too).
const defsPrefix = "#/definitions/"

// grammarSchema returns a fresh schema of the grammar name.
func grammarSchema(name string) map[string]any {
	str := func(pattern string, maxLen int, desc string) map[string]any {
		s := map[string]any{"type": "string", "pattern": pattern, "description": desc}
		if maxLen > 0 {
			s["maxLength"] = maxLen
		}
		return s
	}
	switch name {
	case "fqdn":
		return str(`^`+labelPattern+`(?:\.`+labelPattern+`)+\.?$`, 254, "A DNS host name of at least two labels.")
	case "hostname":
		return str(`^`+labelPattern+`(?:\.`+labelPattern+`)*$`, 253, "A host name.")
	case "name":
		// A number's text is a name too (owner: 2024).
		return map[string]any{"anyOf": []any{
			str(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 128, "A name: letters, digits, '.', '_' and '-', starting with a letter or digit."),
			map[string]any{"type": "integer", "minimum": 0},
		}}
	case "status":
		return map[string]any{"anyOf": []any{
			str(`^[1-5][0-9x][0-9x]$`, 0, "An HTTP status like 200 or 2xx."),
			map[string]any{"type": "integer", "minimum": 100, "maximum": 599},
		}}
	case "checkpath":
		return str(`^/[A-Za-z0-9._~%/!&()*+,;=:@?-]*$`, 1024, "A URI path (and query) starting with /.")
	case "urlpath":
		return str(`^/[A-Za-z0-9._~%/!&()*+,;=:@-]*$`, 1024, "A URI path starting with /.")
	case "redirect":
		return str(`^(?:/|https?://)[A-Za-z0-9._~%/!&()*+,;=:@?#\[\]'$-]*$`, 2048, "A path starting with / or an http(s) URL.")
	case "email":
		return str(`^[A-Za-z0-9._%+-]+@`+labelPattern+`(?:\.`+labelPattern+`)*$`, 253, "An e-mail address (without a display name).")
	case "ipv4":
		return str(`^`+ipv4Pattern+`$`, 0, "An IPv4 address.")
	case "ip":
		return str(`^(?:`+ipv4Pattern+`|`+ipv6Pattern+`)$`, 0, "An IP address.")
	case "interface":
		s := str(`^[A-Za-z0-9._-]{1,15}$`, 0, "A Linux interface name.")
		s["not"] = map[string]any{"enum": []any{".", ".."}}
		return s
	case "prefix":
		s := str(prefixPattern(bits4, bits6), 0, "An IP prefix (address/length) or address.")
		s["examples"] = []any{"192.0.2.0/24", "2001:db8::/32", "198.51.100.7"}
		return s
	case "duration":
		s := str(durationPattern, 0, "A duration like 5s, 1m30s or 500ms (1ms to 24h).")
		s["examples"] = []any{"5s", "1m30s"}
		return s
	case "community":
		s := str(`^`+dec16+`:`+dec16+`$`, 0, "A BGP community ASN:VALUE, each 0..65535 (not 65535:0, graceful shutdown).")
		s["not"] = map[string]any{"enum": []any{"65535:0"}}
		s["examples"] = []any{"65000:100"}
		return s
	case "large_community":
		s := str(`^`+dec32+`:`+dec32+`:`+dec32+`$`, 0, "A BGP large community ASN:VALUE:VALUE, each 0..4294967295.")
		s["examples"] = []any{"4200000001:1:2"}
		return s
	case "monitoring":
		return str(prefixPattern(bits4Mon, bits6Mon), 0, "An IP address or prefix of at least /8 (IPv4) or /16 (IPv6).")
	}
	panic("intent: unknown grammar " + name)
}

func (Prefix) scalarSchema() map[string]any { return grammarRef("prefix") }

// Decimal numbers without leading zeros (model.parseDecimal) up to 65535
// and 4294967295: the parts of BGP communities.
const (
	dec16 = `(?:0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])`
	dec32 = `(?:0|[1-9][0-9]{0,8}|[1-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-5])`
)

func (Community) scalarSchema() map[string]any      { return grammarRef("community") }
func (LargeCommunity) scalarSchema() map[string]any { return grammarRef("large_community") }

// durationPattern is what time.ParseDuration takes (without a sign: the
// loader wants a positive duration).
const durationPattern = `^\+?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$`

func (Duration) scalarSchema() map[string]any { return grammarRef("duration") }
