package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// maxCNAME bounds the CNAMEs followed for one lookup.
const maxCNAME = 8

// ErrNotFound is wrapped by Lookup when a name does not exist (NXDOMAIN) or
// has no A or AAAA records.
var ErrNotFound = errors.New("name does not resolve")

// ErrCNAMELoop is wrapped by Lookup when CNAMEs loop or chain more than
// eight deep.
var ErrCNAMELoop = errors.New("cname chain loops or is too long")

// ErrUnreachable is wrapped by Lookup when the DNS server did not answer
// (connection refused, no route, timeout): nothing is known about the name,
// and every other name would fail the same way. The error is an
// *UnreachableError naming the server.
var ErrUnreachable = errors.New("DNS server unreachable")

// UnreachableError is a query the server did not answer.
type UnreachableError struct {
	// Server is the server's address (host:port).
	Server string
	// Err is the network error.
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("DNS server %s unreachable: %v", e.Server, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) hold.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Cause is the network error in words an operator reads: "connection
// refused", "i/o timeout", without the sockets' addresses.
func (e *UnreachableError) Cause() string {
	var se *os.SyscallError
	if errors.As(e.Err, &se) {
		return se.Err.Error()
	}
	var ne net.Error
	if errors.As(e.Err, &ne) && ne.Timeout() {
		return "no answer (timeout)"
	}
	return e.Err.Error()
}

// ServerAddr is the host:port a Resolver of NewClient(server) asks.
func ServerAddr(server string) string { return serverAddr(server) }

// Resolver resolves a name to its A and AAAA addresses.
type Resolver interface {
	// Lookup returns the addresses of name, IPv4 first, each sorted and
	// without duplicates, after following CNAMEs. A name without any
	// address gives an error wrapping ErrNotFound.
	Lookup(ctx context.Context, name string) ([]netip.Addr, error)
}

// LookupHost returns host itself when it is an IP address literal, and
// asks r otherwise. Inventory hosts use it for ansible_host, which may be
// either.
func LookupHost(ctx context.Context, r Resolver, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil && a.Zone() == "" {
		return []netip.Addr{a}, nil
	}
	return r.Lookup(ctx, host)
}

// Chain returns a Resolver that asks each resolver in turn and moves on to
// the next only when a name is not found: for example a local zone with
// build-time overrides in front of a DNS server.
func Chain(rs ...Resolver) Resolver { return chain(rs) }

type chain []Resolver

func (c chain) Lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	err := fmt.Errorf("%s: %w", name, ErrNotFound)
	for _, r := range c {
		var addrs []netip.Addr
		addrs, err = r.Lookup(ctx, name)
		if !errors.Is(err, ErrNotFound) {
			return addrs, err
		}
	}
	return nil, err
}

// canonical returns name in lower case with a trailing dot, or an error if
// it is not a valid domain name.
func canonical(name string) (string, error) {
	if name == "" || name == "." {
		return "", errors.New("empty name")
	}
	fqdn := strings.ToLower(mdns.Fqdn(name))
	if _, ok := mdns.IsDomainName(fqdn); !ok || strings.Contains(fqdn, "..") {
		return "", fmt.Errorf("invalid name %q", name)
	}
	return fqdn, nil
}

// sortAddrs sorts IPv4 before IPv6, each in order, and drops duplicates.
func sortAddrs(addrs []netip.Addr) []netip.Addr {
	out := slices.Clone(addrs)
	slices.SortFunc(out, netip.Addr.Compare) // Compare orders by bit length first
	return slices.Compact(out)
}

// addrOf returns the address of an A or AAAA record.
func addrOf(rr mdns.RR) (netip.Addr, bool) {
	switch r := rr.(type) {
	case *mdns.A:
		a, ok := netip.AddrFromSlice(r.A.To4())
		return a, ok
	case *mdns.AAAA:
		a, ok := netip.AddrFromSlice(r.AAAA.To16())
		return a, ok
	}
	return netip.Addr{}, false
}
