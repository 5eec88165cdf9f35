package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

// run runs the CLI in-process and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	code := clix.Main(app, append([]string{"lbctl"}, args...))
	return out.String(), errOut.String(), code
}

// campusCopy copies examples/campus into a temporary directory.
func campusCopy(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", "campus")
	dst := filepath.Join(t.TempDir(), "campus")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestCheckCampus(t *testing.T) {
	out, errOut, code := run(t, "check", filepath.Join("..", "..", "examples", "campus"))
	if code != 0 {
		t.Fatalf("check exited %d:\n%s", code, errOut)
	}
	if !strings.Contains(out, "ok: 16 services, 8 VIPs, 2 nodes") {
		t.Errorf("unexpected output: %q", out)
	}
}

// TestCheckFindsMistakes: each mistake in a copy of examples/campus makes
// check exit 1 naming the file and line.
func TestCheckFindsMistakes(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		wants []string
	}{
		{"unknown key", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "web", "wiki.yaml"), "ownr: web-team\n")
		}, []string{"web/wiki.yaml:8:1: unknown field \"ownr\" (did you mean \"owner\"?)"}},
		{"broken yaml", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "mail", "imap.yaml"), "fqdn: imap.campus.example\nlisteners: [993\nbackend: mail_imap\n")
		}, []string{"mail/imap.yaml:3:1: yaml: ',' or ']' must be specified"}},
		{"duplicate fqdn in a second file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "web", "typo3", "physik-neu.yaml"), "# copy of physik\nfqdn: physik.campus.example\n")
		}, []string{"web/typo3/physik-neu.yaml:2:7: host name physik.campus.example is also used by service web/typo3/physik", "web/typo3/physik.yaml:1:7"}},
		{"carriage return in a service value", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "web", "wiki.yaml"), "owner: web\rteam\n")
		}, []string{"web/wiki.yaml:8:11: carriage return (CR) inside a line"}},
		{"escaped NUL in the site file", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "site.yaml"), "dns: \"ns1\\0\"\n")
		}, []string{"site.yaml:15:6: value \"ns1\\x00\" holds a control character U+0000 (NUL)"}},
		{"escaped CR in the inventory", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "inventory.yaml"), "    extra:\n      hosts:\n        x1: {ansible_host: \"203.0.113.99\\r\"}\n")
		}, []string{"holds a control character U+000D (carriage return)"}},
		{"alias missing from the zone", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "web", "wiki.yaml"), "aliases: [wissen.campus.example]\n")
		}, []string{"web/wiki.yaml:8:11: alias wissen.campus.example does not resolve"}},
		{"fqdn missing from the zone", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "web", "typo3", "sport.yaml"), "fqdn: sport.campus.example\n")
		}, []string{"web/typo3/sport.yaml:1:7: fqdn sport.campus.example does not resolve"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := campusCopy(t)
			c.edit(t, dir)
			_, errOut, code := run(t, "check", dir)
			if code != 1 {
				t.Fatalf("check exited %d, want 1; stderr:\n%s", code, errOut)
			}
			for _, w := range c.wants {
				if !strings.Contains(errOut, filepath.Join(dir, w)) && !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if !strings.Contains(errOut, dir+string(filepath.Separator)) {
				t.Errorf("errors should name files under %s:\n%s", dir, errOut)
			}
		})
	}
}

func TestResolveJSONStable(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "campus")
	a, errOut, code := run(t, "resolve", dir, "--json")
	if code != 0 {
		t.Fatalf("resolve exited %d:\n%s", code, errOut)
	}
	b, _, _ := run(t, "resolve", "--json", campusCopy(t))
	if a != b {
		t.Error("resolve --json differs between the tree and a copy of it")
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(a), &v); err != nil || v["name"] != "campus" {
		t.Errorf("resolve --json printed no campus model: %v", err)
	}
	table, _, _ := run(t, "resolve", dir)
	if !strings.Contains(table, "192.0.2.40 (transparent)") || !strings.Contains(table, "web/typo3/physik") {
		t.Errorf("resolve table lacks VIPs or services:\n%s", table)
	}
}

func TestResolveZoneOverride(t *testing.T) {
	dir := campusCopy(t)
	zone := filepath.Join(t.TempDir(), "other.zone")
	writeFile(t, zone, "$ORIGIN campus.example.\n@ 300 IN SOA ns h 1 1 1 1 1\nwww 300 IN A 192.0.2.99\n")
	_, errOut, code := run(t, "check", "--zone", zone, dir)
	if code != 1 || !strings.Contains(errOut, "fqdn physik.campus.example does not resolve") {
		t.Errorf("--zone did not replace the site's zone (exit %d):\n%s", code, errOut)
	}
}

func TestSchemaCommand(t *testing.T) {
	out, errOut, code := run(t, "schema")
	if code != 0 {
		t.Fatalf("schema exited %d: %s", code, errOut)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s["$schema"] != "http://json-schema.org/draft-07/schema#" { // what editors implement
		t.Errorf("$schema = %v", s["$schema"])
	}
	props, _ := s["properties"].(map[string]any)
	for _, k := range []string{"fqdn", "tls", "backend", "listeners", "transparent", "timeouts"} {
		if _, ok := props[k]; !ok {
			t.Errorf("schema lacks property %s", k)
		}
	}
	if _, _, code := run(t, "schema", "bogus"); code != 2 {
		t.Errorf("schema bogus exited %d, want 2", code)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, p, s string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, string(b)+s)
}
