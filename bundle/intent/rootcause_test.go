package intent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lbctl/lbctl/bundle/dns"
	"github.com/lbctl/lbctl/test/scale"
)

// campusTree copies examples/campus and rewrites its site.yaml with edit.
func campusTree(t *testing.T, edit func(site string) string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "campus")
	copyTree(t, "../../examples/campus", dir)
	p := filepath.Join(dir, SiteFileName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lineOf is the 1-based line of site.yaml in dir that starts with prefix.
func lineOf(t *testing.T, dir, prefix string) int {
	b, _ := os.ReadFile(filepath.Join(dir, SiteFileName))
	for i, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("site.yaml has no line %q", prefix)
	return 0
}

// countingResolver counts the names asked.
type countingResolver struct {
	r     dns.Resolver
	calls atomic.Int64
}

func (c *countingResolver) Lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	c.calls.Add(1)
	return c.r.Lookup(ctx, name)
}

// campusLookups is how many names resolving examples/campus asks for.
func campusLookups(t *testing.T) int {
	z, err := dns.LoadZone("../../examples/campus/campus.zone")
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingResolver{r: z}
	if _, err := Resolve(context.Background(), "../../examples/campus", Options{Resolver: cr}); err != nil {
		t.Fatal(err)
	}
	return int(cr.calls.Load())
}

// closedUDPPort is a loopback address nothing listens on.
func closedUDPPort(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// oneError resolves dir and returns its one error.
func oneError(t *testing.T, dir string, opts Options) *Error {
	t.Helper()
	_, err := Resolve(context.Background(), dir, opts)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("want one error, got %v", err)
	}
	return es[0]
}

// TestDNSUnreachableOnce: with the DNS server down (a loopback port that
// refuses), check reports one problem at the line of site.yaml that names
// the server, with the count of the lookups it failed; not one per name.
func TestDNSUnreachableOnce(t *testing.T) {
	n := campusLookups(t)
	server := closedUDPPort(t)
	dir := campusTree(t, func(s string) string {
		return strings.Replace(s, "zone: campus.zone", "dns: "+server, 1)
	})
	e := oneError(t, dir, Options{})
	want := Pos{File: filepath.Join(dir, SiteFileName), Line: lineOf(t, dir, "dns:"), Col: 1}
	if e.Pos != want {
		t.Errorf("at %s, want %s", e.Pos, want)
	}
	for _, s := range []string{"DNS server " + server + " unreachable (connection refused)", fmt.Sprintf("%d of %d lookups failed", n, n), "campus.example and "} {
		if !strings.Contains(e.Msg, s) {
			t.Errorf("%q lacks %q", e.Msg, s)
		}
	}
	// The server given with --dns: site.yaml names none, so the message
	// says where it came from.
	other := closedUDPPort(t)
	e = oneError(t, dir, Options{DNS: other})
	if e.Pos.Line != 0 || !strings.Contains(e.Msg, "DNS server "+other+" (--dns) unreachable") {
		t.Errorf("--dns: %s: %s", e.Pos, e.Msg)
	}
}

// TestInventoryMissingOnce: a missing inventory is one problem at the line
// of site.yaml that names it, with the backend groups it left unresolved.
func TestInventoryMissingOnce(t *testing.T) {
	dir := campusTree(t, func(s string) string { return s })
	if err := os.Remove(filepath.Join(dir, "inventory.yaml")); err != nil {
		t.Fatal(err)
	}
	e := oneError(t, dir, Options{})
	want := Pos{File: filepath.Join(dir, SiteFileName), Line: lineOf(t, dir, "inventory:"), Col: 1}
	if e.Pos != want || !strings.Contains(e.Msg, "inventory inventory.yaml: no such file or directory: ") ||
		!strings.Contains(e.Msg, "backend groups and hosts not looked up: ") || !strings.Contains(e.Msg, "apps_lms, ") {
		t.Errorf("%s: %s", e.Pos, e.Msg)
	}
}

// unreachableResolver fails every lookup as a server that does not answer.
type unreachableResolver struct{ calls atomic.Int64 }

func (u *unreachableResolver) Lookup(context.Context, string) ([]netip.Addr, error) {
	u.calls.Add(1)
	return nil, &dns.UnreachableError{Server: "192.0.2.53:53", Err: errors.New("i/o timeout")}
}

// TestDNSUnreachableStopsAsking: after a few lookups without an answer the
// rest are not asked (each would wait for its timeout), and all count.
func TestDNSUnreachableStopsAsking(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gen")
	if _, err := scale.Generate("../../examples/campus", dir, 200); err != nil {
		t.Fatal(err)
	}
	u := &unreachableResolver{}
	e := oneError(t, dir, Options{Resolver: u})
	if calls := u.calls.Load(); calls > unreachableAfter+lookupWorkers {
		t.Errorf("%d lookups asked, want at most %d", calls, unreachableAfter+lookupWorkers)
	}
	if !strings.Contains(e.Msg, "DNS server 192.0.2.53:53") || !strings.Contains(e.Msg, "i/o timeout") {
		t.Errorf("%s", e.Msg)
	}
	var failed, total int
	if _, err := fmt.Sscanf(e.Msg[strings.Index(e.Msg, "): ")+3:], "%d of %d lookups failed", &failed, &total); err != nil || failed != total || total < 200 {
		t.Errorf("%q: %d of %d (%v)", e.Msg, failed, total, err)
	}
}
