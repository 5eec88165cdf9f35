package model

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Community is a standard BGP community (RFC 1997), written ASN:VALUE with
// both halves 0..65535. It encodes as that text and decodes only from it.
type Community struct {
	ASN, Value uint16
}

// GracefulShutdown is the well-known GRACEFUL_SHUTDOWN community (RFC
// 8326): lbctl adds it to every route of a node that `lbctl drain --all`
// shuts down gracefully; intents may not use it.
var GracefulShutdown = Community{ASN: 65535, Value: 0}

// ParseCommunity parses ASN:VALUE.
func ParseCommunity(s string) (Community, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 2 {
		return Community{}, grammarErr("community %q: want ASN:VALUE, each 0..65535", s)
	}
	var v [2]uint16
	for i, p := range parts {
		n, err := parseDecimal(p, 65535)
		if err != nil {
			return Community{}, grammarErr("community %q: want ASN:VALUE, each 0..65535", s)
		}
		v[i] = uint16(n)
	}
	return Community{ASN: v[0], Value: v[1]}, nil
}

func (c Community) String() string { return fmt.Sprintf("%d:%d", c.ASN, c.Value) }

// Bird is the community as a BIRD pair: (ASN,VALUE).
func (c Community) Bird() string { return fmt.Sprintf("(%d,%d)", c.ASN, c.Value) }

// MarshalText encodes ASN:VALUE.
func (c Community) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes ASN:VALUE.
func (c *Community) UnmarshalText(b []byte) error {
	v, err := ParseCommunity(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Compare orders communities by ASN, then value.
func (c Community) Compare(d Community) int {
	return cmp.Or(cmp.Compare(c.ASN, d.ASN), cmp.Compare(c.Value, d.Value))
}

// LargeCommunity is a BGP large community (RFC 8092), written
// GLOBAL:LOCAL1:LOCAL2 with each part 0..4294967295.
type LargeCommunity struct {
	Global, Local1, Local2 uint32
}

// ParseLargeCommunity parses GLOBAL:LOCAL1:LOCAL2.
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return LargeCommunity{}, grammarErr("large community %q: want ASN:VALUE:VALUE, each 0..4294967295", s)
	}
	var v [3]uint32
	for i, p := range parts {
		n, err := parseDecimal(p, 1<<32-1)
		if err != nil {
			return LargeCommunity{}, grammarErr("large community %q: want ASN:VALUE:VALUE, each 0..4294967295", s)
		}
		v[i] = uint32(n)
	}
	return LargeCommunity{Global: v[0], Local1: v[1], Local2: v[2]}, nil
}

func (c LargeCommunity) String() string { return fmt.Sprintf("%d:%d:%d", c.Global, c.Local1, c.Local2) }

// Bird is the large community as a BIRD triple: (GLOBAL,LOCAL1,LOCAL2).
func (c LargeCommunity) Bird() string { return fmt.Sprintf("(%d,%d,%d)", c.Global, c.Local1, c.Local2) }

// MarshalText encodes GLOBAL:LOCAL1:LOCAL2.
func (c LargeCommunity) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes GLOBAL:LOCAL1:LOCAL2.
func (c *LargeCommunity) UnmarshalText(b []byte) error {
	v, err := ParseLargeCommunity(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Compare orders large communities part by part.
func (c LargeCommunity) Compare(d LargeCommunity) int {
	return cmp.Or(cmp.Compare(c.Global, d.Global), cmp.Compare(c.Local1, d.Local1), cmp.Compare(c.Local2, d.Local2))
}

// parseDecimal parses a plain decimal number (digits only, no sign, no
// leading zeros but "0") up to max.
func parseDecimal(s string, max uint64) (uint64, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, grammarErr("not a decimal number")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, grammarErr("out of range")
	}
	return n, nil
}

// SortCommunities sorts and deduplicates communities.
func SortCommunities(cs []Community) []Community {
	slices.SortFunc(cs, Community.Compare)
	return slices.Compact(cs)
}

// SortLargeCommunities sorts and deduplicates large communities.
func SortLargeCommunities(cs []LargeCommunity) []LargeCommunity {
	slices.SortFunc(cs, LargeCommunity.Compare)
	return slices.Compact(cs)
}

// RouteAttrs are BGP attributes a service asks for its VIP's routes.
type RouteAttrs struct {
	// Communities and LargeCommunities are added to the routes (sorted,
	// distinct).
	Communities      []Community      `json:"communities,omitempty"`
	LargeCommunities []LargeCommunity `json:"large_communities,omitempty"`
	// Primary is the host name of the node that serves the VIP while it
	// is healthy there; the other nodes announce it as backup (their
	// NodeBGP.Backup). Empty: every node announces it alike (anycast).
	Primary string `json:"primary,omitempty"`
}

// NodeBGP are a node's BGP attributes and session options beyond its
// sessions' addresses. The zero value is BIRD's defaults.
type NodeBGP struct {
	// GracefulRestart enables BGP graceful restart (RFC 4724) on every
	// session, with RestartTime seconds (1..4095) when not zero.
	GracefulRestart bool `json:"graceful_restart,omitempty"`
	RestartTime     int  `json:"restart_time,omitempty"`
	// Communities and LargeCommunities are added to every route the node
	// announces: the site's and the node profile's, sorted, distinct.
	Communities      []Community      `json:"communities,omitempty"`
	LargeCommunities []LargeCommunity `json:"large_communities,omitempty"`
	// MED (MULTI_EXIT_DISC) and LocalPref of every route; nil leaves them
	// unset (BIRD sends local preference 100 on iBGP sessions).
	MED       *uint32 `json:"med,omitempty"`
	LocalPref *uint32 `json:"local_pref,omitempty"`
	// Prepend is how many times the node's ASN is prepended to the AS
	// path of every route on eBGP sessions (0..8).
	Prepend int `json:"prepend,omitempty"`
	// Backup is how the node announces a VIP whose primary is another
	// node; set (rule I28) when any VIP of the site has a primary.
	Backup *Backup `json:"backup,omitempty"`
}

// Backup are the attributes of a backup route: a lower local preference
// on iBGP sessions and more AS-path prepends on eBGP sessions.
type Backup struct {
	LocalPref uint32 `json:"local_pref"`
	Prepend   int    `json:"prepend"`
}

// DefaultLocalPref is the local preference BIRD sends on iBGP sessions
// when a route has none.
const DefaultLocalPref = 100

// EffectiveLocalPref is the local preference of the node's routes: its
// own, else BIRD's default.
func (b *NodeBGP) EffectiveLocalPref() uint32 {
	if b.LocalPref != nil {
		return *b.LocalPref
	}
	return DefaultLocalPref
}

// CheckPasswordFile checks a password file's name: an absolute path of [A-Za-z0-9._/-] without "." or
// ".." segments, at most 1024 bytes.
func CheckPasswordFile(s string) error {
	if err := checkASCII(s, 1024, treeChars, "password file"); err != nil {
		return err
	}
	if !strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
		return grammarErr("password file %q: want an absolute path of a file", s)
	}
	for seg := range strings.SplitSeq(s[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return grammarErr("password file %q: empty, . or .. path segment", s)
		}
	}
	return nil
}

func (v *validator) nodeBGP(p string, b *NodeBGP) {
	if b.RestartTime < 0 || b.RestartTime > 4095 {
		v.check(grammarErr("%d out of range 0..4095", b.RestartTime), p, ".restart_time")
	}
	if b.Prepend < 0 || b.Prepend > 8 {
		v.check(grammarErr("%d out of range 0..8", b.Prepend), p, ".prepend")
	}
	for i, c := range b.Communities {
		if c == GracefulShutdown {
			v.check(grammarErr("community %s is reserved for graceful shutdown (lbctl drain --all)", c), p, ".communities[", strconv.Itoa(i), "]")
		}
	}
	if bk := b.Backup; bk != nil {
		if bk.Prepend < 0 || bk.Prepend > 8 {
			v.check(grammarErr("%d out of range 0..8", bk.Prepend), p, ".backup.prepend")
		}
		if bk.LocalPref >= b.EffectiveLocalPref() {
			v.check(grammarErr("backup local preference %d is not below the node's %d", bk.LocalPref, b.EffectiveLocalPref()), p, ".backup.local_pref")
		}
	}
}

func (v *validator) peer(p string, rr *Peer) {
	v.check(checkName(rr.Name), p, ".name")
	v.check(checkIP(rr.Address), p, ".address")
	if rr.PasswordFile != "" {
		v.check(CheckPasswordFile(rr.PasswordFile), p, ".password_file")
	}
	if rr.Multihop < 0 || rr.Multihop > 255 {
		v.check(grammarErr("%d out of range 0..255", rr.Multihop), p, ".multihop")
	}
	if rr.SourceAddress.IsValid() {
		v.check(checkIP(rr.SourceAddress), p, ".source_address")
	}
	if rr.BFDIntervalMS < 0 || rr.BFDIntervalMS > 60_000 {
		v.check(grammarErr("%d out of range 0..60000", rr.BFDIntervalMS), p, ".bfd_interval_ms")
	}
	if rr.BFDMultiplier < 0 || rr.BFDMultiplier > 255 {
		v.check(grammarErr("%d out of range 0..255", rr.BFDMultiplier), p, ".bfd_multiplier")
	}
}

func (v *validator) routeAttrs(p string, a *RouteAttrs, nodes map[string]bool) {
	for i, c := range a.Communities {
		if c == GracefulShutdown {
			v.check(grammarErr("community %s is reserved for graceful shutdown (lbctl drain --all)", c), p, ".communities[", strconv.Itoa(i), "]")
		}
	}
	if a.Primary != "" {
		v.check(checkHostname(a.Primary), p, ".primary")
		if nodes != nil && !nodes[a.Primary] {
			v.check(grammarErr("primary %q is no node of the site", a.Primary), p, ".primary")
		}
	}
}

// SourceAddr is the address the node's session with rr starts from: the
// peer's source address, else the node's first address of the peer's
// family (invalid when it has none).
func (n *Node) SourceAddr(rr *Peer) netip.Addr {
	if rr.SourceAddress.IsValid() {
		return rr.SourceAddress.Unmap()
	}
	for _, a := range n.Addresses {
		if a.IsValid() && a.Unmap().Is4() == rr.Address.Unmap().Is4() {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
