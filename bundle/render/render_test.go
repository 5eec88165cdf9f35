package render_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/render"
	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
)

func paths(files []render.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

// TestNodeLayout pins the relative paths of a node's files.
func TestNodeLayout(t *testing.T) {
	site := rendertest.Site()
	files, err := render.Node(site, site.Node("lb1"), render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bird/bird.conf",
		"nftables/lbctl.nft",
		"vips/192.0.2.10/443.crt-list",
		"vips/192.0.2.10/haproxy.cfg",
		"vips/192.0.2.20/haproxy.cfg",
		"vips/192.0.2.30/haproxy.cfg",
		"vips/192.0.2.40/haproxy.cfg",
		"vips/2001-db8--60/haproxy.cfg",
	}
	if got := paths(files); !slices.Equal(got, want) {
		t.Errorf("paths:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestNodeErrors: problems of several renderers come back together.
func TestNodeErrors(t *testing.T) {
	site := rendertest.Site()
	site.VIPs[0].Addresses = append(site.VIPs[0].Addresses, netip.Addr{})
	n := *site.Node("lb1")
	n.RouterID = netip.Addr{}
	_, err := render.Node(site, &n, render.Options{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"haproxy: vip 192.0.2.10", "bird: node lb1: router id", "nft: node lb1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestCampusGolden renders examples/campus for lb1: the review copy of what
// the example ships, in testdata/campus-lb1/.
func TestCampusGolden(t *testing.T) {
	site := rendertest.Campus(t)
	files, err := render.Node(site, site.Node("lb1"), render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rendertest.Golden(t, "campus-lb1/"+f.Path, f.Data)
	}
	if !*rendertest.Update {
		// No stale golden files: every file in testdata is rendered.
		var stale []string
		root := filepath.Join("testdata", "campus-lb1")
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, p)
				if !slices.Contains(paths(files), filepath.ToSlash(rel)) {
					stale = append(stale, rel)
				}
			}
			return nil
		})
		if len(stale) > 0 {
			t.Errorf("golden files no longer rendered (delete them): %v", stale)
		}
	}
}

// TestCampusNodeAccepted renders examples/campus for lb1 with the node paths
// pointing into a temporary tree (test certificates, include files) and runs
// the reference tools on the result: haproxy -c on every VIP, bird -p on
// bird.conf, nft -c (in a throwaway network namespace) on the ruleset.
func TestCampusNodeAccepted(t *testing.T) {
	hp := rendertest.NeedTool(t, "haproxy")
	bp := rendertest.NeedTool(t, "bird")
	site := rendertest.Campus(t)
	dir := t.TempDir()
	opts := render.Options{
		HAProxy: haproxy.Options{
			CertDir:    filepath.Join(dir, "certs"),
			VIPDir:     filepath.Join(dir, "vips"),
			RuntimeDir: filepath.Join(dir, "run"),
		},
		Bird: bird.Options{IncludeDir: filepath.Join(dir, "bird")},
	}
	for _, c := range rendertest.Certificates(site) {
		rendertest.WriteCert(t, opts.HAProxy.CertDir, c)
	}
	v4, v6 := bird.Announce(bird.Prefixes(site))
	files, err := render.Node(site, site.Node("lb1"), opts)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{"bird/" + bird.Include4Name: v4, "bird/" + bird.Include6Name: v6}
	for _, f := range files {
		m[f.Path] = f.Data
	}
	rendertest.WriteFiles(t, dir, m)
	checked := 0
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		switch {
		case strings.HasSuffix(f.Path, "/"+haproxy.ConfigName):
			out, err := rendertest.Run(hp, "-c", "-f", p)
			if err != nil || strings.Contains(out, "[WARNING]") {
				t.Errorf("%s: haproxy -c: %v\n%s", f.Path, err, out)
			}
			checked++
		case f.Path == render.BirdConf:
			if out, err := rendertest.Run(bp, "-p", "-c", p); err != nil {
				t.Errorf("%s: bird -p: %v\n%s", f.Path, err, out)
			}
			checked++
		case f.Path == render.NFTText:
			if os.Geteuid() != 0 {
				t.Logf("skipping nft -c of %s: needs root", f.Path)
				continue
			}
			if out, err := rendertest.Run("unshare", "-n", "nft", "-c", "-f", p); err != nil {
				t.Errorf("%s: nft -c: %v\n%s", f.Path, err, out)
			}
			checked++
		}
	}
	if want := len(site.VIPs) + 2; checked != want && os.Geteuid() == 0 {
		t.Errorf("checked %d files, want %d", checked, want)
	}
}
