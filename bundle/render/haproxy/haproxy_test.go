package haproxy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
)

// TestGolden renders every VIP of the feature-rich model with the default
// node paths and compares each file with testdata/<vip>/<file>.
func TestGolden(t *testing.T) {
	site := rendertest.Site()
	for i := range site.VIPs {
		v := &site.VIPs[i]
		files, err := haproxy.Render(site, v, haproxy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if files[0].Name != haproxy.ConfigName {
			t.Errorf("vip %s: first file %s, want %s", v.Name, files[0].Name, haproxy.ConfigName)
		}
		for _, f := range files {
			rendertest.Golden(t, v.Name+"/"+f.Name, f.Data)
		}
	}
}

// TestDeterministic renders twice and expects identical bytes.
func TestDeterministic(t *testing.T) {
	site := rendertest.Site()
	for i := range site.VIPs {
		a, err := haproxy.Render(site, &site.VIPs[i], haproxy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := haproxy.Render(rendertest.Site(), &site.VIPs[i], haproxy.Options{})
		if len(a) != len(b) {
			t.Fatalf("vip %s: %d files, then %d", site.VIPs[i].Name, len(a), len(b))
		}
		for j := range a {
			if a[j].Name != b[j].Name || string(a[j].Data) != string(b[j].Data) {
				t.Errorf("vip %s: %s differs between renders", site.VIPs[i].Name, a[j].Name)
			}
		}
	}
}

// CheckSite renders every VIP of site into a temporary tree with test
// certificates and runs "haproxy -c" on each configuration; warnings fail
// the test too.
func CheckSite(t *testing.T, site *model.Site) {
	t.Helper()
	hp := rendertest.NeedTool(t, "haproxy")
	dir := t.TempDir()
	opts := haproxy.Options{
		CertDir:    filepath.Join(dir, "certs"),
		VIPDir:     filepath.Join(dir, "vips"),
		RuntimeDir: filepath.Join(dir, "run"),
	}
	for _, c := range rendertest.Certificates(site) {
		rendertest.WriteCert(t, opts.CertDir, c)
	}
	if len(site.VIPs) == 0 {
		t.Fatal("site has no VIPs")
	}
	for i := range site.VIPs {
		v := &site.VIPs[i]
		files, err := haproxy.Render(site, v, opts)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][]byte{}
		for _, f := range files {
			m[f.Name] = f.Data
		}
		vdir := filepath.Join(opts.VIPDir, v.Name)
		rendertest.WriteFiles(t, vdir, m)
		cfg := filepath.Join(vdir, haproxy.ConfigName)
		out, err := rendertest.Run(hp, "-c", "-f", cfg)
		if err != nil {
			t.Errorf("vip %s: haproxy -c refused the configuration: %v\n%s\n--- %s:\n%s", v.Name, err, out, cfg, numbered(m[haproxy.ConfigName]))
			continue
		}
		if !strings.Contains(out, "Configuration file is valid") || strings.Contains(out, "[WARNING]") {
			t.Errorf("vip %s: haproxy -c: %s", v.Name, out)
		}
	}
}

func numbered(b []byte) string {
	var sb strings.Builder
	for i, l := range strings.Split(string(b), "\n") {
		sb.WriteString(strings.TrimSpace(strings.Repeat(" ", 4-len(itoa(i+1)))+itoa(i+1)) + " " + l + "\n")
	}
	return sb.String()
}

func itoa(i int) string {
	s := ""
	for i >= 10 {
		s = string(rune('0'+i%10)) + s
		i /= 10
	}
	return string(rune('0'+i)) + s
}

// TestHAProxyAccepts runs haproxy -c on every VIP of the feature-rich model.
func TestHAProxyAccepts(t *testing.T) {
	CheckSite(t, rendertest.Site())
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// TestCampusHAProxyAccepts resolves examples/campus and runs haproxy -c on
// every VIP's configuration.
func TestCampusHAProxyAccepts(t *testing.T) {
	CheckSite(t, rendertest.Campus(t))
}
