package validate

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/internal/testcert"
	"github.com/lbctl/lbctl/node/plan"
)

func need(t *testing.T, bins ...string) {
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if _, err := os.Stat("/usr/sbin/" + b); err != nil {
				t.Skipf("%s not installed (make deps installs it)", b)
			}
		}
	}
}

const goodCfg = `global
  log stdout format raw local0
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 192.0.2.10:443 ssl crt-list /etc/lbctl/vips/192.0.2.10/crt-list
  default_backend be
backend be
  server s1 203.0.113.5:80
`

const goodBird = `router id 198.51.100.11;
protocol device {}
protocol static vips4 {
  ipv4;
  include "/etc/bird/lbctl/announce4.conf";
}
`

func TestValidate(t *testing.T) {
	need(t, "haproxy", "bird")
	certDir := t.TempDir()
	ca, _ := testcert.NewCA("ca")
	pemData, _ := ca.IssueValid("www.campus.example")
	os.WriteFile(filepath.Join(certDir, "www.pem"), pemData, 0o600)
	expired, _ := ca.Issue([]string{"old.campus.example"}, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	os.WriteFile(filepath.Join(certDir, "old.pem"), expired, 0o600)

	site := &model.Site{Services: []model.Service{
		{Name: "www", FQDN: "www.campus.example", VIP: "192.0.2.10", TLS: &model.TLS{Certificate: "www"}},
	}}
	vip := func(cfg string) plan.VIP {
		return plan.VIP{Name: "192.0.2.10", Files: []plan.File{
			{Path: "crt-list", Data: []byte(filepath.Join(certDir, "www.pem") + "\n")},
			{Path: "haproxy.cfg", Data: []byte(cfg)}}}
	}
	// The files are the test's own: readable by the user running it
	// (TestReadable checks the haproxy user's view).
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	v := &Validator{CertDir: certDir, VIPDir: "/etc/lbctl/vips", BirdIncludeDir: "/etc/bird/lbctl", User: me.Username}
	p := &plan.Plan{Added: []string{"192.0.2.10"}}
	ctx := context.Background()
	next := &plan.State{VIPs: []plan.VIP{vip(goodCfg)}, BirdConf: []byte(goodBird)}
	if err := v.Validate(ctx, site, next, p); err != nil {
		t.Fatalf("valid release: %v", err)
	}
	tests := []struct {
		name string
		mod  func(s *model.Site, n *plan.State)
		want string
	}{
		{"haproxy syntax", func(_ *model.Site, n *plan.State) { n.VIPs[0] = vip(goodCfg + "  bogus-keyword 1\n") },
			"vip 192.0.2.10: haproxy -c:"},
		{"bird syntax", func(_ *model.Site, n *plan.State) { n.BirdConf = []byte("router id nonsense;\n") },
			"bird.conf: bird -p:"},
		{"missing certificate", func(s *model.Site, _ *plan.State) { s.Services[0].TLS.Certificate = "nope" },
			"certificate nope: " + filepath.Join(certDir, "nope.pem") + " is missing"},
		{"missing certificate names its users", func(s *model.Site, _ *plan.State) { s.Services[0].TLS.Certificate = "nope" },
			"(needed by VIP 192.0.2.10: www)"},
		{"expired certificate", func(s *model.Site, _ *plan.State) {
			s.Services[0].TLS.Certificate, s.Services[0].FQDN = "old", "old.campus.example"
		}, "expired on"},
		{"certificate not covering an alias", func(s *model.Site, _ *plan.State) { s.Services[0].Aliases = []string{"w3.campus.example"} },
			"does not cover w3.campus.example"},
	}
	for _, tt := range tests {
		s := &model.Site{Services: []model.Service{site.Services[0]}}
		tl := *site.Services[0].TLS
		s.Services[0].TLS = &tl
		n := &plan.State{VIPs: []plan.VIP{vip(goodCfg)}, BirdConf: []byte(goodBird)}
		tt.mod(s, n)
		err := v.Validate(ctx, s, n, p)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestNamesThatWouldLeaveTheScratchDirectory: a VIP or file name that is
// not a plain name inside its directory is refused before anything is
// written, whatever produced the release (a decoded bundle refuses such
// names already: model.Site.Validate).
func TestNamesThatWouldLeaveTheScratchDirectory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	outside := filepath.Join(tmp, "x")
	v := &Validator{HAProxy: "/bin/false"}
	for _, tc := range []struct {
		vip, file, want string
	}{
		{"../../x", "haproxy.cfg", `vip "../../x": not a plain name`},
		{"a/b", "haproxy.cfg", `vip "a/b": not a plain name`},
		{"..", "haproxy.cfg", `vip "..": not a plain name`},
		{"192.0.2.10", "../../../x/haproxy.cfg", `file "../../../x/haproxy.cfg": not a plain name`},
		{"192.0.2.10", "/etc/x", `file "/etc/x": not a plain name`},
	} {
		next := &plan.State{VIPs: []plan.VIP{{Name: tc.vip, Files: []plan.File{{Path: tc.file, Data: []byte(goodCfg)}}}}}
		err := v.Validate(context.Background(), &model.Site{}, next, &plan.Plan{Added: []string{tc.vip}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("vip %q file %q: %v, want %q", tc.vip, tc.file, err, tc.want)
		}
		if _, err := os.Stat(outside); err == nil {
			t.Fatalf("vip %q file %q: wrote %s", tc.vip, tc.file, outside)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}
