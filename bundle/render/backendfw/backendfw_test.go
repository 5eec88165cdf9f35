package backendfw_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/backendfw"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
)

func TestHosts(t *testing.T) {
	hosts := backendfw.Hosts(rendertest.Site())
	byName := map[string]backendfw.Host{}
	for _, h := range hosts {
		byName[h.Name] = h
	}
	if len(hosts) != 13 {
		t.Errorf("%d hosts, want 13", len(hosts))
	}
	for name, want := range map[string]backendfw.Host{
		"erp1": {Name: "erp1", Addresses: []string{"203.0.113.61"}, Ports: []int{3200, 3300}, Services: []string{"erp/app"}, Monitored: []int{3200, 3300},
			Transparent: []backendfw.Clients{{Ports: []int{3200, 3300}, Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}}}},
		"mx1":   {Name: "mx1", Addresses: []string{"203.0.113.21"}, Ports: []int{25, 465, 587}, Services: []string{"mail/smtp"}, Monitored: []int{25, 465, 587}},
		"c1":    {Name: "c1", Addresses: []string{"203.0.113.14"}, Ports: []int{443}, Services: []string{"web/c"}, Monitored: []int{443}},
		"ldap2": {Name: "ldap2", Addresses: []string{"2001:db8:1::52"}, Ports: []int{389}, Services: []string{"ldap/directory"}, Monitored: []int{389}},
	} {
		got := byName[name]
		if !reflect.DeepEqual(got, want) {
			t.Errorf("host %s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestGolden(t *testing.T) {
	files, err := backendfw.Render(rendertest.Site())
	if err != nil {
		t.Fatal(err)
	}
	rendertest.GoldenFiles(t, "lab", files)
	rrs, err := backendfw.RouteReflectors(rendertest.SiteBGP("/etc/lbctl/bgp/rr1.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rrs {
		rendertest.Golden(t, "lab-bgp/"+f.Path, f.Data)
	}
}

func TestTransparentAnySource(t *testing.T) {
	site := rendertest.Site()
	site.Services[0].AllowedSources = nil // erp/app admits everyone
	for _, h := range backendfw.Hosts(site) {
		if h.Name == "erp1" {
			want := []backendfw.Clients{{Ports: []int{3200, 3300}}}
			if !reflect.DeepEqual(h.Transparent, want) {
				t.Errorf("transparent = %+v, want %+v", h.Transparent, want)
			}
		}
	}
}

func TestReflectorConflict(t *testing.T) {
	site := rendertest.Site()
	site.Nodes[1].RouteReflectors[0].Address = netip.MustParseAddr("198.51.100.3")
	_, err := backendfw.Render(site)
	if err == nil || !strings.Contains(err.Error(), "route reflector rr1") {
		t.Errorf("err = %v", err)
	}
}

// TestNFTAccepts checks every backend snippet with nft -c in a throwaway
// network namespace, then loads it twice there (the second load replaces
// the table) and lists it back.
func TestNFTAccepts(t *testing.T) {
	rendertest.NeedRoot(t, "nft checks against the kernel (in a throwaway network namespace)")
	bin := rendertest.NeedTool(t, "nft")
	eachRendered(t, ".nft", "backend snippets", func(name, dir string, f backendfw.File) {
		p := filepath.Join(dir, filepath.Base(f.Path))
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := rendertest.Run("unshare", "-n", bin, "-c", "-f", p); err != nil {
			t.Errorf("%s %s: nft -c: %v\n%s", name, f.Path, err, out)
			return
		}
		out, err := rendertest.Run("unshare", "-n", "sh", "-c", `"$0" -f "$1" && "$0" -f "$1" && "$0" list table inet `+backendfw.Table, bin, p)
		if err != nil || !strings.Contains(out, "tcp dport @ports drop") {
			t.Errorf("%s %s: load twice and list: %v\n%s", name, f.Path, err, out)
		}
	})
}

// TestBirdAccepts includes every route reflector stanza in a minimal
// reflector configuration and runs bird -p on it.
func TestBirdAccepts(t *testing.T) {
	bin := rendertest.NeedTool(t, "bird")
	eachRendered(t, ".conf", "route reflector stanzas", func(name, dir string, f backendfw.File) {
		stanza := filepath.Join(dir, filepath.Base(f.Path))
		conf := stanza + ".main"
		main := fmt.Sprintf("router id 198.51.100.2;\nprotocol device {}\nprotocol direct { ipv4; ipv6; }\nprotocol bfd {}\ninclude %q;\n", stanza)
		rendertest.WriteFiles(t, dir, map[string][]byte{filepath.Base(f.Path): f.Data, filepath.Base(conf): []byte(main)})
		if out, err := rendertest.Run(bin, "-p", "-c", conf); err != nil {
			t.Errorf("%s %s: bird -p: %v\n%s\n%s", name, f.Path, err, out, f.Data)
		}
	})
}

// eachRendered renders the lab site, the campus site and one whose node
// host names collide as BIRD symbols (the second gets a suffix that must
// stay a symbol), and calls check with every file ending in suffix and a
// fresh directory per site; a site without such files (what) fails.
func eachRendered(t *testing.T, suffix, what string, check func(name, dir string, f backendfw.File)) {
	t.Helper()
	odd := rendertest.Site()
	odd.Nodes[0].Hostname, odd.Nodes[1].Hostname = "lb-1.x", "lb_1_x"
	if err := odd.Validate(); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "rr1.password")
	rendertest.WriteFiles(t, filepath.Dir(pw), map[string][]byte{"rr1.password": []byte("password \"s3cr3t\";\n")})
	sites := map[string]*model.Site{"lab": rendertest.Site(), "campus": rendertest.Campus(t), "colliding names": odd, "bgp": rendertest.SiteBGP(pw)}
	for name, site := range sites {
		files, err := backendfw.Render(site)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		n := 0
		for _, f := range files {
			if strings.HasSuffix(f.Path, suffix) {
				n++
				check(name, dir, f)
			}
		}
		if n == 0 {
			t.Errorf("%s: no %s", name, what)
		}
	}
}
