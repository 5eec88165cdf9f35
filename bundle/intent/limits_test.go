package intent

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

// writeBig writes a file of at least size bytes: head, then line(i) for
// i = 0, 1, ... until the size is reached.
func writeBig(t *testing.T, p string, size int, head string, line func(i int) string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n, _ := w.WriteString(head)
	for i := 0; n < size; i++ {
		m, _ := w.WriteString(line(i))
		n += m
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// aliasBombLine is line i of a "billion laughs" document: every anchor
// holds ten aliases of the one before.
func aliasBombLine(i int) string {
	if i == 0 {
		return "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
	}
	return fmt.Sprintf("l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
}

// TestInputBounds: huge files and alias floods are refused before the
// YAML parser sees them (which takes tens of seconds and gigabytes on
// them), with a message naming the file. The time is not asserted.
func TestInputBounds(t *testing.T) {
	for _, c := range []struct {
		name, file string
		size       int
		head       string
		line       func(int) string
		want       string
	}{
		{"50 MB service file", "svc.yaml", 50 << 20, "fqdn: b.test.example\nbackend: web\naliases:\n",
			func(i int) string { return fmt.Sprintf("  - n%d.test.example\n", i) },
			"svc.yaml: file too large: more than 1 MiB (the limit per file)"},
		{"45 MB alias bomb", "svc.yaml", 45 << 20, "", aliasBombLine,
			"svc.yaml: file too large: more than 1 MiB (the limit per file)"},
		{"alias bomb under the size limit", "svc.yaml", 200 << 10, "", aliasBombLine,
			"svc.yaml:92:60: more than 1000 anchors and aliases (the limit per file)"},
		{"alias bomb in defaults", "defaults.yaml", 200 << 10, "", aliasBombLine,
			"defaults.yaml:92:60: more than 1000 anchors and aliases (the limit per file)"},
		{"50 MB site file", "site.yaml", 50 << 20, "site: test\n", func(i int) string { return fmt.Sprintf("# %d\n", i) },
			"site.yaml: file too large: more than 1 MiB (the limit per file)"},
		{"20 MB inventory", "inventory.yaml", 20 << 20, "all:\n  hosts:\n",
			func(i int) string { return fmt.Sprintf("    h%d: {ansible_host: 203.0.113.1}\n", i) },
			"inventory.yaml: file too large: more than 16 MiB (the limit per file)"},
		{"alias bomb in the inventory", "inventory.yaml", 2 << 20, "all:\n  vars:\n", func(i int) string { return "    " + aliasBombLine(i) },
			"inventory.yaml:913:11: more than 10000 anchors and aliases (the limit per file)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, "testdata/base", dir)
			writeBig(t, filepath.Join(dir, c.file), c.size, c.head, c.line)
			got := errorLines(t, dir)
			if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), c.want) {
				t.Errorf("errors:\n%s\nwant one with %q", strings.Join(got, "\n"), c.want)
			}
		})
	}
}

// TestAcceptedOnPurpose resolves trees that look odd but are accepted, as
// docs/intents.md says, and checks what they mean.
func TestAcceptedOnPurpose(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		check func(t *testing.T, s *model.Site)
	}{
		{"CRLF line ends", map[string]string{"ok.yaml": "fqdn: a.test.example\r\nbackend: web\r\nowner: \"team\"\r\ncontacts:\r\n  - ops@test.example\r\n"},
			func(t *testing.T, s *model.Site) {
				if sv := s.Service("ok"); sv.Owner != "team" || sv.Backend.Group != "web" || sv.Contacts[0] != "ops@test.example" {
					t.Errorf("service = %+v", sv)
				}
			}},
		{"byte order mark", map[string]string{"ok.yaml": "\ufefffqdn: a.test.example\nbackend: web\n"},
			func(t *testing.T, s *model.Site) {
				if sv := s.Service("ok"); sv.FQDN != "a.test.example" {
					t.Errorf("service = %+v", sv)
				}
			}},
		{"tabs between tokens", map[string]string{"ok.yaml": "fqdn:\ta.test.example\nbackend: web\t# comment\n"},
			func(t *testing.T, s *model.Site) {
				if sv := s.Service("ok"); sv.Backend.Group != "web" {
					t.Errorf("service = %+v", sv)
				}
			}},
		{"empty service file keeps its defaults", map[string]string{
			"team/defaults.yaml": "defaults:\n  fqdn: b.test.example\n  backend: mail\n  owner: team\n",
			"team/empty.yaml":    ""},
			func(t *testing.T, s *model.Site) {
				if sv := s.Service("team/empty"); sv == nil || sv.Owner != "team" || sv.Backend.Group != "mail" {
					t.Errorf("service = %+v", sv)
				}
			}},
		{"inherited tls settings on a plain service", map[string]string{
			"team/defaults.yaml": "defaults:\n  tls: {redirect: true, min_version: \"1.3\"}\n",
			"team/plain.yaml":    "fqdn: b.test.example\nbackend: web\n"},
			func(t *testing.T, s *model.Site) {
				if sv := s.Service("team/plain"); sv == nil || sv.TLS != nil || sv.Listeners[0].Action != model.ActionServe {
					t.Errorf("service = %+v", sv)
				}
			}},
		{"monitoring hosts", map[string]string{
			"site.yaml":    "site: test\ninventory: inventory.yaml\nzone: test.zone\nmonitoring:\n  hosts: [198.51.100.60, \"2001:db8:ffff::/120\"]\n",
			"ok.yaml":      "fqdn: a.test.example\nbackend: web\nallow: [203.0.113.0/24]\n",
			"open.yaml":    "fqdn: b.test.example\nbackend: web\n",
			"covered.yaml": "fqdn: c.test.example\nbackend: web\nallow: [198.51.100.0/24]\n"},
			func(t *testing.T, s *model.Site) {
				if want := []netip.Prefix{netip.MustParsePrefix("198.51.100.60/32"), netip.MustParsePrefix("2001:db8:ffff::/120")}; !slices.Equal(s.Monitoring, want) {
					t.Errorf("monitoring = %v, want %v", s.Monitoring, want)
				}
				// A client allow list admits the monitoring hosts, whose
				// Icinga 2 checks reach the VIP; no list admits everyone.
				if got, want := s.Service("ok").AllowedSources, []netip.Prefix{netip.MustParsePrefix("198.51.100.60/32"), netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:ffff::/120")}; !slices.Equal(got, want) {
					t.Errorf("allowed sources = %v, want %v", got, want)
				}
				// A monitoring prefix the list covers is not repeated.
				if got, want := s.Service("covered").AllowedSources, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:ffff::/120")}; !slices.Equal(got, want) {
					t.Errorf("allowed sources = %v, want %v", got, want)
				}
				if got := s.Service("open").AllowedSources; got != nil {
					t.Errorf("allowed sources of an open service = %v", got)
				}
			}},
		{"null resets an inherited value", map[string]string{
			"team/defaults.yaml": "defaults:\n  tls: {enabled: true, certificate: wildcard}\n",
			"team/own.yaml":      "fqdn: b.test.example\nbackend: web\ntls: {certificate: null}\n"},
			func(t *testing.T, s *model.Site) {
				if sv := s.Service("team/own"); sv == nil || sv.TLS.Certificate != "b.test.example" {
					t.Errorf("service = %+v", sv)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, "testdata/base", dir)
			for name, data := range c.files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			site, err := Resolve(context.Background(), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, site)
		})
	}
}

// TestSymlinkToOtherFileIgnored: a symlink to something that is not an
// intents file (a README kept elsewhere) is left alone, like the file
// itself would be.
func TestSymlinkToOtherFileIgnored(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/base", dir)
	if err := os.Symlink("/nonexistent/README.md", filepath.Join(dir, "README.md")); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
}
