//go:build linux

package install_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
	haproxyrender "github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/internal/testcert"
	"github.com/lbctl/lbctl/test/systemdtest"
	"github.com/lbctl/lbctl/test/testbed"
)

// Paths inside the namespaced node: the node's defaults, so the unit
// template's /etc/lbctl/vips/%i paths hold.
const (
	nodeName     = "lb1"
	configPath   = "/etc/lbctl/lbctl.yaml"
	insideBin    = "/run/lbtest/bin/lbctl"
	insideBundle = "/run/lbtest/bundles"
	stateDir     = "/var/lib/lbctl"
	vipDir       = "/etc/lbctl/vips"
	unitDir      = "/etc/systemd/system"
	certDir      = "/etc/lbctl/certs"
	trustedDir   = "/etc/lbctl/trusted.d"
	birdConf     = "/etc/bird/bird.conf"
	birdInclude  = "/etc/bird/lbctl"
	birdSocket   = "/run/bird/bird.ctl"
)

// nodeConfig is lbctl.yaml of the test node: short drain, bounded gate.
const nodeConfig = `node: lb1
gate_timeout: 20s
drain_time: 20ms
`

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// lbctl builds the lbctl binary once per test binary and returns its path
// on the host.
func lbctl(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "lbt-inst-build-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "lbctl"), "./cmd/lbctl")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/lbctl: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "lbctl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// run runs a host command and fails the test on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// campusDir returns the campus example's directory.
func campusDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "campus")
}

// tree copies examples/campus into a temporary directory and applies the
// edits: path -> func(old) new; a nil func removes the file.
//
// Every tree admits the intranet's own VIP address as a client: the health
// gate probes a VIP from the node itself, so the probe's source address is
// the VIP, which the intranet's allow list rejects (connection reset), and
// the gate never passes (a bug reported with these tests).
func tree(t testing.TB, edits map[string]func(string) string) string {
	t.Helper()
	edits = maps.Clone(edits)
	if edits == nil {
		edits = map[string]func(string) string{}
	}
	edits["web/intranet.yaml"] = replace(t, "  - 203.0.113.0/24\n", "  - 203.0.113.0/24\n  - 192.0.2.12/32\n")
	dst := t.TempDir()
	src := campusDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	for rel, f := range edits {
		p := filepath.Join(dst, rel)
		if f == nil {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		old, _ := os.ReadFile(p)
		if err := os.WriteFile(p, []byte(f(string(old))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// replace returns an edit that replaces old by new exactly once.
func replace(t testing.TB, old, new string) func(string) string {
	return func(s string) string {
		if strings.Count(s, old) != 1 {
			t.Fatalf("edit: %q occurs %d times", old, strings.Count(s, old))
		}
		return strings.Replace(s, old, new, 1)
	}
}

func appendText(extra string) func(string) string {
	return func(s string) string { return s + extra }
}

// upgradeEdits make release 2 of the fault injection and crash tests from
// campus: a VIP added (apps/status on 192.0.2.51), one removed
// (directory/ldap, 192.0.2.30), one reloaded (web/wiki balance), one
// restarted and TPROXY routing removed (legacy/erp no longer transparent),
// and bird.conf changed (no BFD).
func upgradeEdits(t testing.TB) map[string]func(string) string {
	return map[string]func(string) string{
		"web/wiki.yaml":       replace(t, "balance: source", "balance: roundrobin"),
		"legacy/erp.yaml":     replace(t, "transparent: true", "transparent: false"),
		"directory/ldap.yaml": nil,
		"apps/status.yaml":    func(string) string { return "fqdn: status.campus.example\nbackend: apps_tickets\n" },
		"campus.zone":         replace(t, "tickets         IN A    192.0.2.50\n", "tickets         IN A    192.0.2.50\nstatus          IN A    192.0.2.51\n"),
		"nodes/lb1.yaml":      replace(t, "bfd: true", "bfd: false"),
	}
}

// keys is a signing key pair made with lbctl keygen.
type keys struct{ dir, name string }

func (k keys) secret() string { return filepath.Join(k.dir, k.name+".key") }
func (k keys) public() string { return filepath.Join(k.dir, k.name+".pub") }

func newKeys(t testing.TB, name string) keys {
	t.Helper()
	k := keys{dir: t.TempDir(), name: name}
	cmd := exec.Command(lbctl(t), "keygen", name, "--unencrypted")
	cmd.Dir = k.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	return k
}

// build builds a signed bundle of dir and returns its bytes. The build time
// is fixed, long past, so the bundle asks for no expiry explicitly (the
// default 30 days after creation would have it refused).
func build(t testing.TB, k keys, dir string, serial uint64) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bundle")
	run(t, lbctl(t), "build", dir, "-o", out, "--key", k.secret(), "--serial", strconv.FormatUint(serial, 10), "--time", "1700000000", "--expires", "never")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resolve returns the resolved model of an intents tree.
func resolve(t testing.TB, dir string) *model.Site {
	t.Helper()
	out, err := exec.Command(lbctl(t), "resolve", dir, "--json").Output()
	if err != nil {
		t.Fatalf("resolve %s: %v", dir, err)
	}
	var s model.Site
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("resolve %s: %v", dir, err)
	}
	return &s
}

// node is a namespaced systemd set up as LB node lb1: BIRD's unit
// unmasked, backends on lo answering on every port the sites use, the
// node configuration, a trusted key and certificates for every TLS
// service.
type node struct {
	t    testing.TB
	sd   *systemdtest.Systemd
	keys keys
	ca   *testcert.CA
}

// newNode boots the node. sites are the releases it will see: their
// backends are served and their certificates issued.
func newNode(t testing.TB, sites ...*model.Site) *node {
	t.Helper()
	sd := systemdtest.Start(t, systemdtest.Options{Name: "lbt-inst"})
	n := &node{t: t, sd: sd, keys: newKeys(t, "lbt-inst")}

	// bird.service is masked by default (a host BIRD must never start);
	// here the install starts it, as on a real node.
	if err := os.Remove(sd.RootPath("/run/systemd/system/bird.service")); err != nil {
		t.Fatalf("unmask bird.service: %v", err)
	}
	sd.Run(t, "systemctl", "daemon-reload")
	sd.Run(t, "ip", "link", "set", "lo", "up")

	sd.WriteFile(t, configPath, []byte(nodeConfigText(t)), 0o644)
	pub, err := os.ReadFile(n.keys.public())
	if err != nil {
		t.Fatal(err)
	}
	sd.WriteFile(t, filepath.Join(trustedDir, n.keys.name+".pub"), pub, 0o644)
	bin, err := os.ReadFile(lbctl(t))
	if err != nil {
		t.Fatal(err)
	}
	sd.WriteFile(t, insideBin, bin, 0o755)

	n.ca, err = testcert.NewCA("lbt-inst CA")
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string][]string{}
	for _, s := range sites {
		for _, svc := range s.Services {
			if svc.TLS == nil || svc.TLS.Certificate == "" {
				continue
			}
			for _, h := range append([]string{svc.FQDN}, svc.Aliases...) {
				if !slices.Contains(hosts[svc.TLS.Certificate], h) {
					hosts[svc.TLS.Certificate] = append(hosts[svc.TLS.Certificate], h)
				}
			}
		}
	}
	for name, hs := range hosts {
		pem, err := n.ca.IssueValid(hs...)
		if err != nil {
			t.Fatal(err)
		}
		// HAProxy reads them as the haproxy user.
		sd.WriteFile(t, filepath.Join(certDir, name+".pem"), pem, 0o644)
	}
	n.serveBackends(sites)
	return n
}

// serveBackends adds every backend address of the sites on lo and serves
// it from this process, inside the node's network namespace: HTTP for
// HTTP services, SMTP and LDAP answers for smtpchk and ldap-check, one
// line for other TCP ports; PROXY headers are accepted.
func (n *node) serveBackends(sites []*model.Site) {
	t := n.t
	t.Helper()
	type ports struct{ http, tcp, smtp, ldap []int }
	by := map[netip.Addr]*ports{}
	for _, s := range sites {
		for _, svc := range s.Services {
			var ps []int
			if svc.Backend.Port > 0 {
				ps = append(ps, svc.Backend.Port)
			}
			for _, l := range svc.Listeners {
				if l.Action == model.ActionServe && l.BackendPort > 0 {
					ps = append(ps, l.BackendPort)
				}
			}
			for _, srv := range svc.Backend.Servers {
				a := srv.Address
				p := by[a]
				if p == nil {
					p = &ports{}
					by[a] = p
				}
				list := &p.tcp
				switch {
				case svc.Mode == model.ModeHTTP:
					list = &p.http
				case svc.Backend.Check.Type == model.CheckSMTP:
					list = &p.smtp
				case svc.Backend.Check.Type == model.CheckLDAP:
					list = &p.ldap
				}
				for _, port := range ps {
					if !slices.Contains(*list, port) {
						*list = append(*list, port)
					}
				}
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	readyDir := t.TempDir()
	var ready []string
	for a, p := range by {
		n.sd.Run(t, "ip", "addr", "add", netip.PrefixFrom(a, a.BitLen()).String(), "dev", "lo")
		cfg := testbed.BackendConfig{Name: "be-" + a.String(), Addr: a.String(),
			HTTP: p.http, TCP: p.tcp, SMTP: p.smtp, LDAP: p.ldap,
			Ready: filepath.Join(readyDir, a.String())}
		ready = append(ready, cfg.Ready)
		wg.Go(func() {
			err := n.sd.InNetNS(func() error { return testbed.ServeBackend(ctx, cfg) })
			if err != nil && ctx.Err() == nil {
				t.Errorf("backend %s: %v", a, err)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range ready {
		for {
			if _, err := os.Stat(r); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("backend %s did not listen", filepath.Base(r))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// put writes a bundle into the node and returns its path inside.
func (n *node) put(b []byte, name string) string {
	p := filepath.Join(insideBundle, name)
	n.sd.WriteFile(n.t, p, b, 0o644)
	return p
}

// lbctl runs the lbctl binary inside the node and returns its output
// and error; the wall time is returned too.
func (n *node) lbctl(args ...string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append([]string{insideBin}, args...)
	var out bytes.Buffer
	cmd := n.sd.Command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return out.String(), time.Since(start), err
}

// mustLbctl is lbctl that fails the test on error.
func (n *node) mustLbctl(args ...string) (string, time.Duration) {
	n.t.Helper()
	out, d, err := n.lbctl(args...)
	if err != nil {
		j, _ := n.sd.Command(context.Background(), "journalctl", "--no-pager", "-n", "40", "-u", "bird.service").CombinedOutput()
		n.t.Fatalf("lbctl %s: %v\n%s\nBIRD's journal:\n%s", strings.Join(args, " "), err, out, j)
	}
	return out, d
}

// install installs a bundle (path inside) with lbctl.
func (n *node) install(bundle string, extra ...string) (string, time.Duration) {
	n.t.Helper()
	return n.mustLbctl(append([]string{"install", "--config", configPath}, append(extra, bundle)...)...)
}

// capture reads the node's state from inside.
func (n *node) capture() *State {
	n.t.Helper()
	var st State
	systemdtest.RunInside(n.t, n.sd, "TestHelperCapture", nil, &st)
	return &st
}

// get fetches url from inside the node's network namespace, with the
// given Host header, on a fresh connection.
func (n *node) get(url, host string) (int, string, error) {
	var code int
	var body string
	err := n.sd.InNetNS(func() error {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(c)
		resp := buf.String()
		line, rest, _ := strings.Cut(resp, "\r\n")
		f := strings.Fields(line)
		if len(f) < 2 {
			return fmt.Errorf("bad response %q", resp)
		}
		code, _ = strconv.Atoi(f[1])
		_, body, _ = strings.Cut(rest, "\r\n\r\n")
		return nil
	})
	return code, body, err
}

// haproxyMaxConn is the connection limit HAProxy gets on a machine whose
// hard RLIMIT_NOFILE the namespaced systemd cannot raise.
const haproxyMaxConn = 4000

// nodeConfigText is lbctl.yaml for the machine: on one without
// CAP_SYS_RESOURCE the namespaced systemd inherits the launcher's hard
// RLIMIT_NOFILE and cannot raise it to the unit's LimitNOFILE, while
// HAProxy needs about two descriptors per connection of the default
// maxconn (20000) and refuses to start; the node's haproxy.maxconn is
// lowered then.
func nodeConfigText(t testing.TB) string {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max >= 2*haproxyrender.DefaultMaxConn+1000 {
		return nodeConfig
	}
	t.Logf("hard RLIMIT_NOFILE is %d: haproxy.maxconn %d on the node", lim.Max, haproxyMaxConn)
	return nodeConfig + fmt.Sprintf("haproxy:\n  maxconn: %d\n", haproxyMaxConn)
}
