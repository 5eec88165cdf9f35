package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/lbctl/lbctl/test/netnstest"
)

// bundleServer publishes one "latest" bundle with an ETag and a
// Last-Modified, answering conditional requests with 304.
type bundleServer struct {
	mu          gosync.Mutex
	data        []byte
	modified    time.Time
	status      int // if non-zero, the next answer (then cleared)
	requests    int
	conditional int
	notModified int
}

func (s *bundleServer) publish(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.modified = b, s.modified.Add(time.Hour)
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.URL.Path != "/campus/latest.bundle" {
		http.NotFound(w, r)
		return
	}
	if s.status != 0 {
		w.WriteHeader(s.status)
		s.status = 0
		return
	}
	sum := sha256.Sum256(s.data)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
		s.conditional++
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", s.modified.UTC().Format(http.TimeFormat))
	if r.Header.Get("If-None-Match") == etag {
		s.notModified++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(s.data)
}

// serve starts srv on 127.0.0.1:80 inside a fresh network namespace and
// returns a client whose connections are made inside it. Without root it
// falls back to the host's loopback (the logic is the same; the namespace
// keeps the test off the host's network).
func serve(t *testing.T, h http.Handler) (base string, client *http.Client) {
	if os.Geteuid() != 0 {
		t.Log("not root: serving on the host's loopback instead of a network namespace")
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL, srv.Client()
	}
	netnstest.RequireRoot(t)
	ns := netnstest.New(t, "sync")
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:80"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	t.Cleanup(srv.Close)
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = ns.Do(func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return "http://127.0.0.1:80", &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial}}
}

func TestHTTPSource(t *testing.T) {
	srv := &bundleServer{modified: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	base, client := serve(t, srv)
	stateFile := filepath.Join(t.TempDir(), "state", "sync-http.json")
	src := &HTTPSource{URL: base + "/campus/latest.bundle", Client: client, StateFile: stateFile}
	n := &fakeNode{current: 4, hasCurrent: true}
	var w noWait
	run := func() (Result, error) { return Sync(context.Background(), src, n.installer(), w.opts(Options{})) }
	counts := func() [3]int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return [3]int{srv.requests, srv.conditional, srv.notModified}
	}

	// A newer bundle is installed; its validators are remembered.
	srv.publish(fakeBundle(5))
	res, err := run()
	if err != nil || res.Action != Installed || res.Serial != 5 || n.current != 5 {
		t.Fatalf("newer bundle: %+v, %v, current %d", res, err, n.current)
	}
	st := src.LoadState()
	if st.Serial != 5 || st.ETag == "" || st.LastModified == "" {
		t.Errorf("state after install: %+v", st)
	}
	// Same bundle again: a conditional request, 304, nothing verified.
	verified := len(n.verified)
	res, err = run()
	if err != nil || res.Action != NotModified || len(n.verified) != verified {
		t.Errorf("unchanged: %+v, %v", res, err)
	}
	if c := counts(); c != [3]int{2, 1, 1} {
		t.Errorf("requests, conditional, 304: %v, want [2 1 1]", c)
	}
	// Without validators (state lost), the same serial is fetched,
	// verified and skipped.
	os.Remove(stateFile)
	res, err = run()
	if err != nil || res.Action != UpToDate || len(n.installed) != 1 {
		t.Errorf("same serial: %+v, %v, installed %d", res, err, len(n.installed))
	}
	// After a rollback below the remembered serial the request is
	// unconditional, so the newest bundle is installed again.
	n.current = 4
	before := counts()
	res, err = run()
	if err != nil || res.Action != Installed || n.current != 5 || counts()[1] != before[1] {
		t.Errorf("after rollback: %+v, %v, current %d, counts %v -> %v", res, err, n.current, before, counts())
	}
	// A tampered bundle is refused: not installed, validators unchanged
	// (the next run fetches and refuses it again).
	st = src.LoadState()
	srv.publish([]byte("signed:6:tampered"))
	res, err = run()
	if !errors.Is(err, ErrRefused) || n.current != 5 || len(n.installed) != 2 {
		t.Errorf("tampered: %+v, %v, current %d", res, err, n.current)
	}
	if got := src.LoadState(); got != st {
		t.Errorf("state changed by a refused bundle: %+v -> %+v", st, got)
	}
	// The next good publication is installed.
	srv.publish(fakeBundle(6))
	if res, err = run(); err != nil || res.Action != Installed || n.current != 6 {
		t.Errorf("after tampered: %+v, %v", res, err)
	}
	// A 503 is retried; a 404 is not.
	srv.mu.Lock()
	srv.status = http.StatusServiceUnavailable
	srv.mu.Unlock()
	os.Remove(stateFile)
	if res, err = run(); err != nil || res.Attempts != 2 || res.Action != UpToDate {
		t.Errorf("503 then 200: %+v, %v", res, err)
	}
	missing := &HTTPSource{URL: base + "/campus/missing.bundle", Client: client}
	res, err = Sync(context.Background(), missing, n.installer(), w.opts(Options{}))
	if !errors.Is(err, ErrPermanent) || res.Attempts != 1 || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %+v, %v", res, err)
	}
	// Body size bound.
	small := &HTTPSource{URL: src.URL, Client: client, MaxSize: 4}
	if _, err := small.Fetch(context.Background(), 0, false); !errors.Is(err, ErrRefused) {
		t.Errorf("oversized: %v", err)
	}
}

// TestHTTPStateOtherURL: validators remembered for one URL are not sent to
// another.
func TestHTTPStateOtherURL(t *testing.T) {
	f := filepath.Join(t.TempDir(), "s.json")
	a := &HTTPSource{URL: "http://a.example/x.bundle", StateFile: f}
	if err := a.saveState(HTTPState{URL: a.URL, ETag: `"1"`, Serial: 3}); err != nil {
		t.Fatal(err)
	}
	if st := a.LoadState(); st.ETag != `"1"` {
		t.Errorf("own state: %+v", st)
	}
	b := &HTTPSource{URL: "http://b.example/x.bundle", StateFile: f}
	if st := b.LoadState(); st != (HTTPState{}) {
		t.Errorf("other URL's state: %+v", st)
	}
}
