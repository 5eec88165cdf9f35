package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Defaults of a client.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultAttempts = 2
	// udpSize is the EDNS0 buffer size advertised (the DNS flag day 2020
	// value, which avoids IP fragmentation).
	udpSize = 1232
)

type client struct {
	server   string
	timeout  time.Duration
	attempts int
	// tcpOnly sends every query over TCP, as a truncated answer does (the
	// tests ask the whole zone over TCP this way).
	tcpOnly bool
}

// NewClient returns a Resolver that asks the DNS server at server ("host",
// "host:port", "[v6]:port"; port 53 by default), normally a recursive
// resolver. It queries A and AAAA in parallel over UDP with EDNS0, retries
// over TCP when an answer is truncated, and follows CNAMEs, asking again
// for a target the server did not resolve itself.
func NewClient(server string) Resolver { return newClient(server) }

func newClient(server string) *client {
	return &client{server: serverAddr(server), timeout: DefaultTimeout, attempts: DefaultAttempts}
}

func serverAddr(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "53")
}

func (c *client) Lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	q, err := canonical(name)
	if err != nil {
		return nil, err
	}
	var (
		wg      sync.WaitGroup
		results [2]typeResult
	)
	for i, t := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
		wg.Go(func() { results[i] = c.lookupType(ctx, q, t) })
	}
	wg.Wait()
	var addrs []netip.Addr
	var errs []error
	for _, r := range results {
		addrs = append(addrs, r.addrs...)
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	// A failure of either query fails the lookup: a build must not go on
	// with half of a name's addresses.
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", name, errors.Join(errs...))
	}
	if len(addrs) == 0 {
		why := "no A or AAAA records"
		if results[0].nxdomain || results[1].nxdomain {
			why = "no such name"
		}
		return nil, fmt.Errorf("%s: %s: %w", name, why, ErrNotFound)
	}
	return sortAddrs(addrs), nil
}

type typeResult struct {
	addrs    []netip.Addr
	nxdomain bool
	err      error
}

// lookupType resolves one record type, following CNAMEs: those in the
// answer first, then by asking again for a target left unresolved.
func (c *client) lookupType(ctx context.Context, q string, qtype uint16) typeResult {
	chain := []string{q}
	typ := mdns.TypeToString[qtype]
	for {
		resp, err := c.exchange(ctx, q, qtype)
		if err != nil {
			return typeResult{err: fmt.Errorf("%s %s: %w", typ, q, err)}
		}
		switch resp.Rcode {
		case mdns.RcodeSuccess:
		case mdns.RcodeNameError:
			return typeResult{nxdomain: true}
		default:
			return typeResult{err: fmt.Errorf("%s %s: server %s answered %s", typ, q, c.server, mdns.RcodeToString[resp.Rcode])}
		}
		// Follow the CNAME chain through the answer section.
		cur := q
	follow:
		for {
			for _, rr := range resp.Answer {
				cn, ok := rr.(*mdns.CNAME)
				if !ok || !strings.EqualFold(cn.Hdr.Name, cur) {
					continue
				}
				cur = strings.ToLower(cn.Target)
				if len(chain) > maxCNAME || containsFold(chain, cur) {
					return typeResult{err: fmt.Errorf("%s: %w", strings.Join(append(chain, cur), " -> "), ErrCNAMELoop)}
				}
				chain = append(chain, cur)
				continue follow
			}
			break
		}
		var addrs []netip.Addr
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype != qtype || !strings.EqualFold(rr.Header().Name, cur) {
				continue
			}
			if a, ok := addrOf(rr); ok {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) > 0 || cur == q {
			return typeResult{addrs: addrs}
		}
		q = cur // the server left the CNAME target to us
	}
}

func containsFold(s []string, v string) bool {
	for _, e := range s {
		if strings.EqualFold(e, v) {
			return true
		}
	}
	return false
}

// exchange sends one query, over UDP with retries on timeout, and over TCP
// when the UDP answer is truncated (or always WithTCP).
func (c *client) exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(udpSize, false)
	if c.tcpOnly {
		return c.exchangeNet(ctx, "tcp", m)
	}
	var err error
	for range c.attempts {
		var resp *mdns.Msg
		resp, err = c.exchangeNet(ctx, "udp", m)
		if resp != nil && resp.Truncated {
			return c.exchangeNet(ctx, "tcp", m)
		}
		if err == nil {
			return resp, nil
		}
		var ne net.Error
		if ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() {
			break
		}
	}
	return nil, err
}

func (c *client) exchangeNet(ctx context.Context, network string, m *mdns.Msg) (*mdns.Msg, error) {
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	dc := &mdns.Client{Net: network, Timeout: c.timeout, UDPSize: udpSize}
	resp, _, err := dc.ExchangeContext(qctx, m, c.server)
	if err != nil {
		if resp != nil && resp.Truncated {
			return resp, nil
		}
		// The network failed, not the caller's context: the server
		// is unreachable.
		var ne net.Error
		if ctx.Err() == nil && (errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)) {
			err = &UnreachableError{Server: c.server, Err: err}
		}
		return nil, fmt.Errorf("query %s over %s: %w", c.server, network, err)
	}
	return resp, nil
}
