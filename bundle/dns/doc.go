// Package dns resolves host names to addresses for builds: the FQDN of a
// service gives its VIP addresses, and inventory hosts without an address are
// reached by name.
//
// A Resolver answers A and AAAA together, sorted IPv4 first, following
// CNAMEs up to a bounded depth. Three resolvers are provided:
//
//   - Zone reads an RFC 1035 master file, so a build can be made from a zone
//     kept next to the intents (or tested) without touching the network.
//   - NewClient asks a DNS server over UDP, falling back to TCP when the
//     answer is truncated.
//   - NewCache wraps another resolver so that a build resolves each name
//     once and sees one consistent answer for it.
//
// Names are case-insensitive and the trailing dot is optional; names are
// always absolute (there is no search list). A name that does not exist, or
// has neither A nor AAAA records, gives an error wrapping ErrNotFound.
//
// The package is the build side's only door to DNS. It never logs and has no
// OS-specific code.
package dns
