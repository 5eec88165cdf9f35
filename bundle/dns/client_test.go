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
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// testServer is a DNS server on 127.0.0.1 (UDP and TCP on one port) that
// answers from testdata/example.org.zone plus a few special names. It acts
// like an authoritative server for example.org.: it follows CNAMEs within
// example.org. and leaves targets elsewhere to the client.
type testServer struct {
	addr string
	rrs  map[string][]mdns.RR // by lower-case owner

	mu      sync.Mutex
	queries map[string]int // "net name type" -> count
}

func (s *testServer) count(network, name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[network+" "+name+" "+mdns.TypeToString[qtype]]
}

func (s *testServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.queries {
		n += c
	}
	return n
}

func (s *testServer) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	network := w.LocalAddr().Network()
	s.mu.Lock()
	s.queries[network+" "+name+" "+mdns.TypeToString[q.Qtype]]++
	s.mu.Unlock()

	resp := new(mdns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	switch name {
	case "slow.example.org.":
		return // never answers
	case "servfail.example.org.":
		resp.Rcode = mdns.RcodeServerFailure
		w.WriteMsg(resp)
		return
	}
	cur, seen := name, map[string]bool{}
	for !seen[cur] {
		seen[cur] = true
		rrs, ok := s.rrs[cur]
		if !ok {
			if cur == name {
				resp.Rcode = mdns.RcodeNameError
			}
			break
		}
		next := ""
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == q.Qtype:
				resp.Answer = append(resp.Answer, rr)
			case rr.Header().Rrtype == mdns.TypeCNAME:
				resp.Answer = append(resp.Answer, rr)
				next = strings.ToLower(rr.(*mdns.CNAME).Target)
			}
		}
		if next == "" || !strings.HasSuffix(next, ".example.org.") {
			break
		}
		cur = next
	}
	if network == "udp" {
		size := 512
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	w.WriteMsg(resp)
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	s := &testServer{rrs: map[string][]mdns.RR{}, queries: map[string]int{}}
	data, err := os.ReadFile("testdata/example.org.zone")
	if err != nil {
		t.Fatal(err)
	}
	var extra strings.Builder
	extra.WriteString("edge.example.net. 60 IN A 192.0.2.200\n")
	extra.WriteString("edge.example.net. 60 IN AAAA 2001:db8::200\n")
	extra.WriteString("servfail.example.org. 60 IN A 192.0.2.1\n")
	extra.WriteString("slow.example.org. 60 IN A 192.0.2.1\n")
	for i := 1; i <= 100; i++ { // about 1.7 kB of answers: over 1232 bytes
		fmt.Fprintf(&extra, "big.example.org. 60 IN A 198.51.100.%d\n", i)
	}
	zp := mdns.NewZoneParser(strings.NewReader(string(data)+"\n$ORIGIN .\n"+extra.String()), ".", "example.org.zone")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		n := strings.ToLower(rr.Header().Name)
		s.rrs[n] = append(s.rrs[n], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}

	// UDP and TCP on the same port; retry if the TCP port is taken.
	var pc net.PacketConn
	var ln net.Listener
	for range 10 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("dns server: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("dns server did not start")
		}
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
	return s
}

func TestClientLookup(t *testing.T) {
	s := startTestServer(t)
	for _, tcpOnly := range []bool{false, true} {
		c := newClient(s.addr)
		c.tcpOnly = tcpOnly
		cases := append(slices.Clone(zoneCases),
			// The server leaves the out-of-zone target to the client.
			lookupCase{name: "ext.example.org", want: addrs("192.0.2.200", "2001:db8::200")},
			lookupCase{name: "servfail.example.org", errText: "servfail.example.org: A servfail.example.org.: server " + s.addr + " answered SERVFAIL"},
			lookupCase{name: "bad..name", errText: "invalid name"},
		)
		for _, tc := range cases {
			checkLookup(t, c, tc)
		}
	}
	// ext needed a second query for the CNAME target, over UDP.
	if n := s.count("udp", "edge.example.net.", mdns.TypeA); n != 1 {
		t.Errorf("queries for the CNAME target over UDP: %d, want 1", n)
	}
}

func TestClientTruncationFallsBackToTCP(t *testing.T) {
	s := startTestServer(t)
	got, err := NewClient(s.addr).Lookup(context.Background(), "big.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || got[0] != netip.MustParseAddr("198.51.100.1") || got[99] != netip.MustParseAddr("198.51.100.100") {
		t.Errorf("big.example.org: %d addresses %v..., want 198.51.100.1-100", len(got), got[:min(3, len(got))])
	}
	if u, tc := s.count("udp", "big.example.org.", mdns.TypeA), s.count("tcp", "big.example.org.", mdns.TypeA); u != 1 || tc != 1 {
		t.Errorf("queries for big A: %d over UDP, %d over TCP; want 1 and 1", u, tc)
	}
	// The small AAAA answer (empty) was not retried over TCP.
	if tc := s.count("tcp", "big.example.org.", mdns.TypeAAAA); tc != 0 {
		t.Errorf("AAAA went over TCP %d times", tc)
	}
}

func TestClientTimeout(t *testing.T) {
	s := startTestServer(t)
	c := newClient(s.addr)
	c.timeout, c.attempts = 100*time.Millisecond, 3
	start := time.Now()
	_, err := c.Lookup(context.Background(), "slow.example.org")
	took := time.Since(start)
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("Lookup of a name the server never answers: %v", err)
	}
	if n := s.count("udp", "slow.example.org.", mdns.TypeA); n != 3 {
		t.Errorf("UDP attempts: %d, want 3", n)
	}
	// Each attempt waits out its timeout, so giving up takes at least 3 x 100ms.
	// No upper bound: the attempt count above says it gave up, and a busy
	// machine may take any time to schedule it (only the test's timeout bounds it).
	if took < 300*time.Millisecond {
		t.Errorf("gave up after %v, want at least 3 x 100ms", took)
	}

	// A canceled context stops at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Lookup(ctx, "www.example.org"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
}

func TestClientNoServer(t *testing.T) {
	// A UDP port with nothing behind it: the ICMP port unreachable (or the
	// timeout) is an error, not "not found".
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	c := newClient(addr)
	c.timeout, c.attempts = 200*time.Millisecond, 1
	_, err = c.Lookup(context.Background(), "www.example.org")
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("no server: %v", err)
	}
}

func TestServerAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.53":          "192.0.2.53:53",
		"192.0.2.53:5353":     "192.0.2.53:5353",
		"2001:db8::53":        "[2001:db8::53]:53",
		"[2001:db8::53]":      "[2001:db8::53]:53",
		"[2001:db8::53]:5353": "[2001:db8::53]:5353",
		"ns1.example.org":     "ns1.example.org:53",
	} {
		if got := serverAddr(in); got != want {
			t.Errorf("serverAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// closedPort returns a loopback UDP address nothing listens on: a socket
// bound and closed again.
func closedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// TestClientUnreachable: a server that refuses (ICMP port unreachable on
// loopback) is ErrUnreachable, naming the server and the cause, and not
// ErrNotFound: nothing is known about the name.
func TestClientUnreachable(t *testing.T) {
	server := closedPort(t)
	_, err := NewClient(server).Lookup(context.Background(), "www.example.org")
	var ue *UnreachableError
	if !errors.Is(err, ErrUnreachable) || !errors.As(err, &ue) || errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup through a closed port: %v", err)
	}
	if ue.Server != server || ue.Cause() != "connection refused" {
		t.Errorf("server %q cause %q, want %s and connection refused", ue.Server, ue.Cause(), server)
	}
	if ServerAddr("192.0.2.53") != "192.0.2.53:53" {
		t.Error(ServerAddr("192.0.2.53"))
	}
}
