package setup_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/pack"
	"github.com/lbctl/lbctl/node/apply"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/node/target"
	"github.com/lbctl/lbctl/node/validate"
	"github.com/lbctl/lbctl/test/nodetest"
)

// injection is a change to a valid resolved model that tries to smuggle
// something into a rendered file or a path, and the field error a node
// must refuse the bundle with.
type injection struct {
	name   string
	change func(s *model.Site)
	want   string
}

var long = strings.Repeat("a", 300)

func injections() []injection {
	const admin = "GET\nglobal\n    stats socket ipv4@127.0.0.1:9999 level admin"
	return []injection{
		{"site name newline", func(s *model.Site) { s.Name = "campus\nglobal" }, "name: control character U+000A"},
		{"service name newline", func(s *model.Site) { s.Services[0].Name = "apps/lms\nglobal" }, "services[0].name: control character U+000A"},
		{"service name path", func(s *model.Site) { s.Services[0].Name = "../../x" }, "services[0].name: \"../../x\": a tree path has no empty segment"},
		{"service source nul", func(s *model.Site) { s.Services[0].Source = "apps/lms.yaml\x00" }, "services[0].source: control character U+0000"},
		{"fqdn carriage return", func(s *model.Site) { s.Services[0].FQDN = "lms.campus.example\rx" }, "services[0].fqdn: control character U+000D"},
		{"fqdn over-long", func(s *model.Site) { s.Services[0].FQDN = long + ".example" }, "services[0].fqdn: 308 bytes, longer than 253"},
		{"alias quote", func(s *model.Site) { s.Services[0].Aliases = []string{`x.example"`} }, `services[0].aliases[0]: character '"'`},
		{"alias brace", func(s *model.Site) { s.Services[0].Aliases = []string{"x.example }"} }, `services[0].aliases[0]: character ' '`},
		{"mode newline", func(s *model.Site) { s.Services[0].Mode = "http\nglobal" }, "services[0].mode: control character U+000A"},
		{"service vip path", func(s *model.Site) { s.Services[0].VIP = "../../x" }, `services[0].vip: character '/'`},
		// A typed address carries text only in its zone.
		{"service address zone", func(s *model.Site) { s.Services[0].Addresses[0] = netip.MustParseAddr("2001:db8::10%lo transparent") }, `services[0].addresses[0]: "2001:db8::10%lo transparent": not an IP address`},
		{"listener action", func(s *model.Site) { s.Services[0].Listeners[0].Action = "serve\n" }, "services[0].listeners[0].action: control character U+000A"},
		{"certificate path", func(s *model.Site) { s.Services[0].TLS.Certificate = "../../etc/shadow" }, `services[0].tls.certificate: character '/'`},
		{"certificate newline", func(s *model.Site) { s.Services[0].TLS.Certificate = "lms\nglobal" }, "services[0].tls.certificate: control character U+000A"},
		{"tls min version", func(s *model.Site) { s.Services[0].TLS.MinVersion = "1.2 ssl-max-ver TLSv1.0" }, `services[0].tls.min_version: "1.2 ssl-max-ver TLSv1.0": want one of 1.2, 1.3`},
		{"backend group hash", func(s *model.Site) { s.Services[0].Backend.Group = "apps#x" }, `services[0].backend.group: character '#'`},
		{"server name newline", func(s *model.Site) {
			s.Services[0].Backend.Servers[0].Name = "s1\n    server evil 198.51.100.66:80"
		}, "services[0].backend.servers[0].name: control character U+000A"},
		{"server address zone", func(s *model.Site) {
			s.Services[0].Backend.Servers[0].Address = netip.MustParseAddr("2001:db8::1%eth0 backup")
		}, `services[0].backend.servers[0].address: "2001:db8::1%eth0 backup": not an IP address`},
		{"software brace", func(s *model.Site) { s.Services[0].Backend.Software = "apache2}" }, `services[0].backend.software: character '}'`},
		{"balance newline", func(s *model.Site) { s.Services[0].Backend.Balance = "roundrobin\nglobal" }, "services[0].backend.balance: control character U+000A"},
		{"check method admin socket", func(s *model.Site) { s.Services[0].Backend.Check.Method = admin }, "services[0].backend.check.method: control character U+000A"},
		{"check method blank", func(s *model.Site) { s.Services[0].Backend.Check.Method = "GET /x" }, `services[0].backend.check.method: character ' '`},
		{"check path header", func(s *model.Site) { s.Services[0].Backend.Check.Path = "/health\r\nX-A: b" }, "services[0].backend.check.path: control character U+000D"},
		{"check path env", func(s *model.Site) { s.Services[0].Backend.Check.Path = `/"$HOME"` }, `services[0].backend.check.path: character '"'`},
		{"check path over-long", func(s *model.Site) { s.Services[0].Backend.Check.Path = "/" + strings.Repeat(long, 4) }, "services[0].backend.check.path: 1201 bytes, longer than 1024"},
		{"check host carriage return", func(s *model.Site) { s.Services[0].Backend.Check.Host = "lms.campus.example\rX" }, "services[0].backend.check.host: control character U+000D"},
		{"check expect", func(s *model.Site) { s.Services[0].Backend.Check.ExpectStatus = "200\n" }, "services[0].backend.check.expect_status: control character U+000A"},
		{"redirect from brace", func(s *model.Site) { s.Services[0].Redirects[0].From = "/x } || { always_true" }, `services[0].redirects[0].from: character ' '`},
		{"redirect to carriage return", func(s *model.Site) { s.Services[0].Redirects[0].To = "/new\r if TRUE" }, "services[0].redirects[0].to: control character U+000D"},
		{"redirect to backslash", func(s *model.Site) { s.Services[0].Redirects[0].To = `/a\"b` }, `services[0].redirects[0].to: character '\\'`},
		{"redirect to over-long", func(s *model.Site) { s.Services[0].Redirects[0].To = "https://x.example/" + strings.Repeat(long, 7) }, "services[0].redirects[0].to: 2118 bytes, longer than 2048"},
		{"allowed source unset", func(s *model.Site) { s.Services[3].AllowedSources[0] = netip.Prefix{} }, `services[3].allowed_sources[0]: "invalid Prefix": not an IP prefix`},
		{"owner nul", func(s *model.Site) { s.Services[0].Owner = "apps-team\x00" }, "services[0].owner: control character U+0000"},
		{"owner bidi override", func(s *model.Site) { s.Services[0].Owner = "apps\u202eteam" }, "services[0].owner: control or format character U+202E"},
		{"contact line separator", func(s *model.Site) { s.Services[0].Contacts[0] = "a@campus.example\u2028b" }, "services[0].contacts[0]: control or format character U+2028"},
		{"vip name path", func(s *model.Site) { s.VIPs[0].Name = "../../x" }, `vips[0].name: character '/'`},
		{"vip name dot dot", func(s *model.Site) { s.VIPs[0].Name = ".." }, `vips[0].name: "..": a name starts with a letter or digit`},
		{"vip service newline", func(s *model.Site) { s.VIPs[0].Services[0] = "apps/lms\nx" }, "vips[0].services[0]: control character U+000A"},
		{"vip port mode", func(s *model.Site) { s.VIPs[0].Ports[0].Mode = "tcp{" }, `vips[0].ports[0].mode: "tcp{": want one of http, tcp`},
		{"node router id", func(s *model.Site) { s.Nodes[0].RouterID = netip.MustParseAddr("fe80::11%x; import all") }, `nodes[0].router_id: "fe80::11%x; import all": not an IP address`},
		{"node address zone", func(s *model.Site) { s.Nodes[0].Addresses[0] = netip.MustParseAddr("fe80::11%lo; import all") }, `nodes[0].addresses[0]: "fe80::11%lo; import all": not an IP address`},
		{"route reflector name quote", func(s *model.Site) {
			s.Nodes[0].RouteReflectors[0].Name = `rr1"; import all; #`
		}, `nodes[0].route_reflectors[0].name: character '"'`},
		{"route reflector address", func(s *model.Site) { s.Nodes[0].RouteReflectors[0].Address = netip.MustParseAddr("2001:db8::2%\n") }, `nodes[0].route_reflectors[0].address: "2001:db8::2%\n": not an IP address`},
		{"vip interface path", func(s *model.Site) { s.Nodes[0].VIPInterface = "../lo" }, `nodes[0].vip_interface: character '/'`},
		{"node source path", func(s *model.Site) { s.Nodes[0].Source = "nodes/../../x" }, `nodes[0].source: "nodes/../../x": a tree path has no empty segment`},
		{"node hostname newline", func(s *model.Site) { s.Nodes[1].Hostname = "lb2\nx" }, "nodes[1].hostname: control character U+000A"},
	}
}

// campus is the resolved model of examples/campus (bundle/intent's golden).
func campus(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../bundle/intent/testdata/campus.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signBundle writes a bundle of site signed with key. A site whose node
// host names the archive would refuse as paths carries resolved.json only
// (the node decodes that first).
func signBundle(t *testing.T, site *model.Site, serial uint64, key nodetest.Key) []byte {
	t.Helper()
	files, err := pack.Files(site)
	if err != nil {
		t.Fatal(err)
	}
	m := archive.Manifest{Serial: serial, Created: time.Now().Add(-time.Minute)}
	b, err := key.Sign(m, files)
	if err != nil {
		resolved, err := model.Encode(site)
		if err != nil {
			t.Fatal(err)
		}
		if b, err = key.Sign(m, []archive.File{{Path: pack.ResolvedPath, Data: resolved}}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestInjectedBundlesAreRefused: signed bundles whose resolved model or
// node profile carries an injection attempt in a string a renderer or a
// path uses are refused by the node's install and plan (the real opener,
// renderers and validator over a real release store), naming the field,
// before anything is rendered, validated, staged or applied: the state
// directory, the temporary directory the validator's scratch copies go to
// and the host are unchanged.
func TestInjectedBundlesAreRefused(t *testing.T) {
	key := nodetest.NewKey(t, 1)
	trusted := key.TrustedDir
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	state := t.TempDir()
	store, err := release.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{CertDir: filepath.Join(state, "certs"), VIPDir: filepath.Join(state, "vips"), RuntimeDir: filepath.Join(state, "run")}
	cfg.Bird.IncludeDir = filepath.Join(state, "bird")
	host := apply.NewFake()
	rendered, validated := 0, 0
	v := &validate.Validator{CertDir: cfg.CertDir, VIPDir: cfg.VIPDir, BirdIncludeDir: cfg.Bird.IncludeDir}
	in := &install.Installer{
		Store: store,
		Host:  host,
		Open:  setup.Opener(trusted, time.Now),
		Render: func(site *model.Site, node *model.Node, serial uint64) (*plan.State, error) {
			rendered++
			return target.State(site, node, serial, setup.TargetOptions(cfg))
		},
		Validate: func(ctx context.Context, site *model.Site, next *plan.State, p *plan.Plan) error {
			validated++
			return v.Validate(ctx, site, next, p)
		},
	}

	// The unchanged model opens and renders: the refusals below are the
	// injections'.
	good, err := model.Decode(campus(t))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := in.Open(signBundle(t, good, 1, key))
	if err != nil {
		t.Fatalf("the valid campus bundle: %v", err)
	}
	if _, err := in.Render(ok.Site, ok.Site.Node("lb1"), 1); err != nil {
		t.Fatalf("render the valid campus bundle: %v", err)
	}
	rendered = 0

	before, beforeTmp, beforeHost := nodetest.Snapshot(t, state), nodetest.Snapshot(t, tmp), host.String()
	list := injections()
	if len(list) < 30 {
		t.Fatalf("%d injections, want at least 30", len(list))
	}
	for i, inj := range list {
		t.Run(inj.name, func(t *testing.T) {
			site, err := model.DecodeUnchecked(campus(t))
			if err != nil {
				t.Fatal(err)
			}
			inj.change(site)
			bundle := signBundle(t, site, uint64(10+i), key)
			for _, dry := range []bool{true, false} { // lbctl plan, lbctl install
				_, err := in.Install(context.Background(), bundle, install.Options{Node: "lb1", DryRun: dry})
				if err == nil {
					t.Fatalf("dry run %v: installed", dry)
				}
				if !strings.Contains(err.Error(), inj.want) || !strings.HasPrefix(err.Error(), "verify bundle: ") {
					t.Fatalf("dry run %v: error\n%v\nlacks %q", dry, err, inj.want)
				}
				var fe *model.FieldError
				if !errors.As(err, &fe) {
					t.Errorf("dry run %v: no model.FieldError in %v", dry, err)
				}
			}
		})
	}
	if rendered != 0 || validated != 0 {
		t.Errorf("rendered %d times, validated %d times: refused too late", rendered, validated)
	}
	nodetest.Same(t, "the refused installs", before, nodetest.Snapshot(t, state))
	nodetest.Same(t, "the refused installs (temporary directory)", beforeTmp, nodetest.Snapshot(t, tmp))
	if host.String() != beforeHost || host.Calls != 0 {
		t.Errorf("host changed (%d calls):\n%s", host.Calls, host.String())
	}
}
