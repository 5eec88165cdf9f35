package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Traffic is a bounded request loop from the client namespace: one new
// connection per request (so the router's ECMP hash spreads them over the
// LB nodes), until Count requests were made or Duration passed.
type Traffic struct {
	// URL is requested with GET; its host may be a name from Hosts.
	URL string
	// Hosts maps names to VIP addresses (Host header and SNI keep the name).
	Hosts map[string]netip.Addr
	// Interval between the starts of two requests (default 20 ms);
	// Workers requests run at once (default 1).
	Interval time.Duration
	Workers  int
	// Count and Duration bound the loop; at least one must be set.
	Count    int
	Duration time.Duration
	// Stop, when closed, ends the loop early: no new request starts, the
	// ones under way finish (cancelling ctx instead fails them).
	Stop <-chan struct{}
	// RetryRefused retries a request once, after RetryDelay (default
	// 100 ms), when its connection was refused or reset before a response
	// arrived, as browsers do for idempotent requests: the connections a
	// killed HAProxy held, and those the router still sent to its node in
	// the few milliseconds before the route was withdrawn. Retried
	// requests are counted in Retried; a request fails only when its retry
	// fails too.
	RetryRefused bool
	RetryDelay   time.Duration
}

// TrafficResult counts what a Traffic loop saw.
type TrafficResult struct {
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	Failed   int `json:"failed"`
	// Retried counts requests whose first connection was refused or reset
	// and whose retry was made (see Traffic.RetryRefused).
	Retried int `json:"retried"`
	// ByNode counts successful requests by the LB node that forwarded
	// them (the backend saw the node's backend-side address), ByBackend by
	// the backend that answered.
	ByNode    map[string]int `json:"by_node"`
	ByBackend map[string]int `json:"by_backend"`
	// Errors are the distinct failure messages, at most 10.
	Errors   []string      `json:"errors,omitempty"`
	Duration time.Duration `json:"duration"`
	// Seconds are the same counts per second of the loop, by the time
	// each request started: "lb1", "lb2", "?" (served through no known
	// node), "failed" and "retried".
	Seconds []map[string]int `json:"seconds"`
}

// Run runs the loop. It returns an error only when it could not start.
func (l Traffic) Run(ctx context.Context, s *Site) (*TrafficResult, error) {
	if l.Count <= 0 && l.Duration <= 0 {
		return nil, errors.New("testbed: load: set Count or Duration")
	}
	l.setDefaults()
	c, err := s.HTTPClient(l.Hosts)
	if err != nil {
		return nil, err
	}
	c.Timeout = 5 * time.Second
	t := &tally{start: time.Now(), nodeOf: s.NodeOf,
		res: &TrafficResult{ByNode: map[string]int{}, ByBackend: map[string]int{}}}
	var deadline time.Time
	if l.Duration > 0 {
		deadline = t.start.Add(l.Duration)
	}
	tick := time.NewTicker(l.Interval)
	defer tick.Stop()
	sem := make(chan struct{}, l.Workers)
	var wg sync.WaitGroup
	for i := 0; l.Count <= 0 || i < l.Count; i++ {
		if !l.next(ctx, deadline, sem) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			at := time.Now()
			line, retried, err := l.request(ctx, c)
			t.record(at, line, err, retried)
		}()
		select {
		case <-ctx.Done():
		case <-l.Stop:
		case <-tick.C:
		}
	}
	wg.Wait()
	t.res.Duration = time.Since(t.start)
	return t.res, nil
}

func (l *Traffic) setDefaults() {
	if l.Interval <= 0 {
		l.Interval = 20 * time.Millisecond
	}
	if l.Workers <= 0 {
		l.Workers = 1
	}
	if l.RetryDelay <= 0 {
		l.RetryDelay = 100 * time.Millisecond
	}
}

// next reports whether another request may start (before the deadline,
// not stopped, ctx alive) once a worker slot in sem is free; it takes the
// slot.
func (l Traffic) next(ctx context.Context, deadline time.Time, sem chan struct{}) bool {
	if !deadline.IsZero() && time.Now().After(deadline) {
		return false
	}
	select {
	case <-l.Stop:
		return false
	default:
	}
	select {
	case <-ctx.Done():
		return false
	case sem <- struct{}{}:
	}
	if ctx.Err() != nil {
		<-sem
		return false
	}
	return true
}

// request makes one request, retried once after RetryDelay when
// RetryRefused is set and its connection was refused or reset before an
// answer.
func (l Traffic) request(ctx context.Context, c *http.Client) (line string, retried bool, err error) {
	line, answered, err := get(ctx, c, l.URL)
	if err == nil || answered || !l.RetryRefused || !refusedOrReset(err) {
		return line, false, err
	}
	select {
	case <-ctx.Done():
	case <-time.After(l.RetryDelay):
	}
	line, _, err = get(ctx, c, l.URL)
	return line, true, err
}

// tally counts the requests of a Traffic loop into res.
type tally struct {
	mu     sync.Mutex
	res    *TrafficResult
	start  time.Time
	nodeOf func(netip.Addr) string
}

// record counts a request started at at: its answer line or its error.
func (t *tally) record(at time.Time, line string, err error, retried bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res := t.res
	sec := int(at.Sub(t.start) / time.Second)
	for len(res.Seconds) <= sec {
		res.Seconds = append(res.Seconds, map[string]int{})
	}
	res.Requests++
	if retried {
		res.Retried++
		res.Seconds[sec]["retried"]++
	}
	if err != nil {
		res.Failed++
		res.Seconds[sec]["failed"]++
		if msg := err.Error(); !slices.Contains(res.Errors, msg) && len(res.Errors) < 10 {
			res.Errors = append(res.Errors, msg)
		}
		return
	}
	res.OK++
	f := ParseAnswer(line)
	node := "?"
	if src, err := netip.ParseAddrPort(f["src"]); err == nil {
		if n := t.nodeOf(src.Addr()); n != "" {
			node = n
		}
	}
	res.ByNode[node]++
	res.ByBackend[f["backend"]]++
	res.Seconds[sec][node]++
}

// get makes one request and returns the first line of a 2xx answer;
// answered says whether a response (status line) arrived.
func get(ctx context.Context, c *http.Client, url string) (line string, answered bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", true, err
	}
	if resp.StatusCode/100 != 2 {
		return "", true, fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]), true, nil
}

// refusedOrReset reports whether err is a refused or reset connection.
func refusedOrReset(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ParseAnswer splits a backend's answer line ("backend=web1 host=... src=...")
// into its fields.
func ParseAnswer(line string) map[string]string {
	out := map[string]string{}
	line = strings.TrimPrefix(strings.TrimSpace(line), "220 ")
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

// NodeOf names the LB node whose backend-side address is a ("" if none).
func (s *Site) NodeOf(a netip.Addr) string {
	a = a.Unmap()
	for _, n := range s.Nodes {
		if n.Backend4 == a || n.Backend6 == a {
			return n.Name
		}
	}
	return ""
}
