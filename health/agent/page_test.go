package agent

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/traffic"
	"github.com/lbctl/lbctl/nodeapi"
)

func TestPage(t *testing.T) {
	a := New(Config{})
	setVIPs(a, []health.VIP{{Name: "192.0.2.10", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")}}, {Name: "192.0.2.<b>"}},
		health.NewTracker(1, 1), health.NewTracker(1, 1))
	missing := filepath.Join(t.TempDir(), "missing.sock")
	p := &Page{Agent: a, Node: "lb1", Serial: func() uint64 { return 42 },
		Traffic: &traffic.Reader{Targets: func() []traffic.Target { return []traffic.Target{{VIP: "192.0.2.10", Socket: missing}} }},
		LastInstall: func() *nodeapi.LogEntry {
			return &nodeapi.LogEntry{Op: "install", From: 41, To: 42, Result: "committed"}
		},
		ServersOut: func() []string { return []string{"typo3-web2: drain in every VIP"} }}
	h := AllowFrom([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, p)
	get := func(remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := get("127.0.0.1:4000")
	body := rec.Body.String()
	for _, want := range []string{`<meta http-equiv="refresh" content="5">`, `data-vip="192.0.2.10"`, `data-vip="192.0.2.&lt;b&gt;"`,
		`<b id="serial">42</b>`, "install 41 &rarr; 42 <b>committed</b>", "typo3-web2: drain in every VIP", "missing.sock"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("the page loads or runs something")
	}
	if rec := get("[::1]:4000"); rec.Code != http.StatusOK {
		t.Errorf("::1: %d", rec.Code)
	}
	if rec := get("192.0.2.99:4000"); rec.Code != http.StatusOK {
		t.Errorf("allow-listed client: %d", rec.Code)
	}
	if rec := get("198.51.100.7:4000"); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "agent.status_allow") {
		t.Errorf("other client: %d %s", rec.Code, rec.Body)
	}
}
