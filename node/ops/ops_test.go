package ops

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/internal/testcert"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

// TestCertChecks: a certificate that expires soon, an expired one, a file
// without a certificate and a valid one, in file order; an empty directory
// says so and passes.
func TestCertChecks(t *testing.T) {
	ca, err := testcert.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	dir := t.TempDir()
	write := func(name string, notAfter time.Time) {
		t.Helper()
		b, err := ca.Issue([]string{"www.example.org"}, now.Add(-48*time.Hour), notAfter)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".pem"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a-soon", now.Add(10*24*time.Hour+time.Hour))
	write("b-expired", now.Add(-time.Hour))
	write("d-valid", now.Add(90*24*time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "c-key-only.pem"), []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := CertChecks(dir, now, 30*24*time.Hour)
	want := []struct {
		what   string
		ok     bool
		detail string
	}{
		{"certificate a-soon", false, "expires in 10 days"},
		{"certificate b-expired", false, "expired on "},
		{"certificate c-key-only", false, "no certificate in " + filepath.Join(dir, "c-key-only.pem")},
		{"certificate d-valid", true, "valid until "},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d checks, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].What != w.what || got[i].OK != w.ok || !strings.HasPrefix(got[i].Detail, w.detail) {
			t.Errorf("check %d: got %+v, want %s ok=%v detail %q...", i, got[i], w.what, w.ok, w.detail)
		}
	}
	empty := t.TempDir()
	if got := CertChecks(empty, now, time.Hour); len(got) != 1 || !got[0].OK || got[0].Detail != "none in "+empty {
		t.Errorf("empty directory: %+v", got)
	}
}

// TestSetDrains: names are checked against the current release before
// anything is written; drain, undrain and --all change the drain record.
func TestSetDrains(t *testing.T) {
	store, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := &plan.State{VIPs: []plan.VIP{{Name: "web"}, {Name: "mail"}}}
	if err := store.Stage(&release.Release{Serial: 7, Bundle: []byte("x"), State: st}); err != nil {
		t.Fatal(err)
	}
	if err := store.Commit(7); err != nil {
		t.Fatal(err)
	}
	drains := func() health.Drains {
		t.Helper()
		d, err := store.ReadDrains()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var unknown *UnknownVIPError
	err = SetDrains(store, DrainRequest{On: true, Names: []string{"web", "ftp"}})
	if !errors.As(err, &unknown) || err.Error() != `no VIP "ftp" in release 7 (VIPs: mail web)` {
		t.Fatalf("unknown VIP: %v", err)
	}
	if d := drains(); d.All || len(d.VIPs) != 0 {
		t.Fatalf("a refused drain changed the record: %+v", d)
	}
	steps := []struct {
		req  DrainRequest
		all  bool
		vips []string
	}{
		{DrainRequest{On: true, Names: []string{"web"}}, false, []string{"web"}},
		{DrainRequest{On: true, Names: []string{"mail"}}, false, []string{"mail", "web"}},
		{DrainRequest{Names: []string{"web"}}, false, []string{"mail"}},
		{DrainRequest{On: true, All: true}, true, []string{"mail"}},
		{DrainRequest{All: true}, false, nil},
	}
	for i, s := range steps {
		if err := SetDrains(store, s.req); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if d := drains(); d.All != s.all || !slices.Equal(d.VIPs, s.vips) {
			t.Errorf("step %d %+v: drains %+v, want all=%v %v", i, s.req, d, s.all, s.vips)
		}
	}
}

// TestCertificateChecks: a certificate the release needs that is missing
// is reported with who needs it; one that does not cover a service's name
// replaces its file's own (passing) check; one not needed keeps its
// expiry check.
func TestCertificateChecks(t *testing.T) {
	ca, err := testcert.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	dir := t.TempDir()
	for name, host := range map[string]string{"www": "www.example.org", "spare": "spare.example.org"} {
		b, err := ca.Issue([]string{host}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".pem"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	needs := []model.CertificateUse{
		{Name: "gone", VIPs: []string{"192.0.2.10"}, Services: []string{"web/a"}, Hosts: []string{"a.example.org"}},
		{Name: "www", VIPs: []string{"192.0.2.11"}, Services: []string{"web/b"}, Hosts: []string{"www.example.org", "b.example.org"}},
	}
	got := CertificateChecks(needs, dir, now, 30*24*time.Hour)
	want := []struct {
		what   string
		ok     bool
		detail string
	}{
		{"certificate spare", true, "valid until "},
		{"certificate www", false, "does not cover b.example.org (" + filepath.Join(dir, "www.pem") + "; needed by VIP 192.0.2.11: web/b)"},
		{"certificate gone", false, "certificate gone: " + filepath.Join(dir, "gone.pem") + " is missing"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d checks, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].What != w.what || got[i].OK != w.ok || !strings.HasPrefix(got[i].Detail, w.detail) {
			t.Errorf("check %d: got %+v, want %s ok=%v detail %q...", i, got[i], w.what, w.ok, w.detail)
		}
	}
	if !strings.HasSuffix(got[2].Detail, "(needed by VIP 192.0.2.10: web/a)") {
		t.Errorf("missing certificate: %s", got[2].Detail)
	}
}
