package bird_test

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
)

func TestGolden(t *testing.T) {
	site := rendertest.Site()
	for _, n := range site.Nodes {
		conf, err := bird.Config(site, &n, bird.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rendertest.Golden(t, n.Hostname+".conf", conf)
	}
	n := site.Node("lb1")
	conf, err := bird.Config(site, n, bird.Options{HoldTime: 3, KeepaliveTime: 1}.FastTimers())
	if err != nil {
		t.Fatal(err)
	}
	rendertest.Golden(t, "lb1-fast.conf", conf)
	bgp := rendertest.SiteBGP("/etc/lbctl/bgp/rr1.conf")
	for _, n := range bgp.Nodes {
		conf, err := bird.Config(bgp, &n, bird.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rendertest.Golden(t, n.Hostname+"-bgp.conf", conf)
	}
	v4, v6 := bird.Announce(bird.Prefixes(site))
	rendertest.Golden(t, "announce4.conf", v4)
	rendertest.Golden(t, "announce6.conf", v6)
}

func TestAnnounce(t *testing.T) {
	ps := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.20/32"),
		netip.MustParsePrefix("2001:db8::10/128"),
		netip.MustParsePrefix("192.0.2.10/32"),
		netip.MustParsePrefix("192.0.2.10/32"),
		netip.MustParsePrefix("::ffff:192.0.2.30/128"), // mapped: becomes 192.0.2.30/32
		netip.MustParsePrefix("198.51.100.77/24"),      // masked
		{},
	}
	v4, v6 := bird.Announce(ps)
	want4 := "route 192.0.2.10/32 blackhole;\nroute 192.0.2.20/32 blackhole;\nroute 192.0.2.30/32 blackhole;\nroute 198.51.100.0/24 blackhole;\n"
	if got := body(v4); got != want4 {
		t.Errorf("v4:\n%s\nwant\n%s", got, want4)
	}
	if got := body(v6); got != "route 2001:db8::10/128 blackhole;\n" {
		t.Errorf("v6: %q", got)
	}
	e4, e6 := bird.Announce(nil)
	if body(e4) != "" || body(e6) != "" || !strings.HasPrefix(string(e4), "#") {
		t.Errorf("empty announce: %q %q", e4, e6)
	}
}

// body drops comment lines.
func body(b []byte) string {
	var out strings.Builder
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasPrefix(l, "#") {
			out.WriteString(l)
		}
	}
	return out.String()
}

// TestBirdAccepts runs "bird -p" on each node's configuration with the
// include files present (full, then empty).
func TestBirdAccepts(t *testing.T) {
	bin := rendertest.NeedTool(t, "bird")
	pw := filepath.Join(t.TempDir(), "rr1.password")
	rendertest.WriteFiles(t, filepath.Dir(pw), map[string][]byte{"rr1.password": []byte("password \"s3cr3t w0rd\";\n")})
	for _, name := range []string{"lab", "campus", "odd names", "bgp"} {
		s := rendertest.Site()
		switch name {
		case "bgp":
			s = rendertest.SiteBGP(pw)
		case "campus":
			s = rendertest.Campus(t)
		case "odd names":
			// Every character the grammar admits in the names bird.conf
			// carries (site and node in comments, route reflectors in
			// protocol names and description strings).
			s.Name = "Lab-1_x.y"
			s.Nodes[0].Hostname = "_lb-1.Example_2"
			s.Nodes[0].RouteReflectors[0].Name = "9rr-1.x_Y"
			s.Nodes[0].RouteReflectors[1].Name = "9rr_1-x.Y"
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
		}
		for _, announce := range []bool{true, false} {
			dir := t.TempDir()
			var v4, v6 []byte
			if announce {
				v4, v6 = bird.Announce(bird.Prefixes(s))
			} else {
				v4, v6 = bird.Announce(nil)
			}
			rendertest.WriteFiles(t, dir, map[string][]byte{bird.Include4Name: v4, bird.Include6Name: v6})
			for _, n := range s.Nodes {
				for _, opts := range []bird.Options{{IncludeDir: dir}, bird.Options{IncludeDir: dir, HoldTime: 3, KeepaliveTime: 1}.FastTimers()} {
					conf, err := bird.Config(s, &n, opts)
					if err != nil {
						t.Fatal(err)
					}
					f := filepath.Join(dir, n.Hostname+".conf")
					rendertest.WriteFiles(t, dir, map[string][]byte{n.Hostname + ".conf": conf})
					if out, err := rendertest.Run(bin, "-p", "-c", f); err != nil {
						t.Errorf("%s %s (announce %v): bird -p: %v\n%s\n%s", name, n.Hostname, announce, err, out, conf)
					}
				}
			}
		}
	}
}

// TestBirdRefusesWhatItCannotQuote: a name that would end a BIRD string
// early or start a new line is refused, whatever the caller validated.
func TestBirdRefusesWhatItCannotQuote(t *testing.T) {
	for _, name := range []string{`rr1"; import all; #`, "rr1\nprotocol kernel { }", `rr\`} {
		site := rendertest.Site()
		n := *site.Node("lb1")
		n.RouteReflectors = slices.Clone(n.RouteReflectors)
		n.RouteReflectors[0].Name = name
		if conf, err := bird.Config(site, &n, bird.Options{}); err == nil {
			t.Errorf("route reflector %q: rendered\n%s", name, conf)
		}
	}
	site := rendertest.Site()
	n := *site.Node("lb1")
	n.Hostname = "lb1\nprotocol kernel { export all; }"
	if conf, err := bird.Config(site, &n, bird.Options{}); err == nil || !strings.Contains(err.Error(), "control character U+000A") {
		t.Errorf("host name with a line break: %v\n%s", err, conf)
	}
}

func TestConfigErrors(t *testing.T) {
	site := rendertest.Site()
	n := *site.Node("lb1")
	n.RouterID = netip.MustParseAddr("2001:db8::1")
	n.RouteReflectors = append(n.RouteReflectors, n.RouteReflectors[0])
	n.RouteReflectors[2].Address = netip.Addr{}
	_, err := bird.Config(site, &n, bird.Options{})
	if err == nil || !strings.Contains(err.Error(), "router id") || !strings.Contains(err.Error(), "address unset") {
		t.Errorf("err = %v", err)
	}
}
