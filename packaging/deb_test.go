package packaging

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/node/config"
)

const testVersion = "1.2.3+test"

var testMTime = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// Files lists every regular file the package must ship, and Dirs the
// directories it must ship explicitly.
var (
	wantFiles = []string{
		"/etc/default/lbctl-sync",
		"/etc/lbctl/lbctl.yaml",
		"/lib/systemd/system/lb-haproxy@.service",
		"/lib/systemd/system/lbctl-agent.service",
		"/lib/systemd/system/lbctl-sync.service",
		"/lib/systemd/system/lbctl-sync.timer",
		"/usr/bin/lbctl",
		"/usr/lib/tmpfiles.d/lbctl.conf",
		"/usr/share/bash-completion/completions/lbctl",
		"/usr/share/doc/lbctl/README.Debian",
		"/usr/share/doc/lbctl/changelog.gz",
		"/usr/share/doc/lbctl/copyright",
		"/usr/share/fish/vendor_completions.d/lbctl.fish",
		"/usr/share/lbctl/ansible/inventory.example.yml",
		"/usr/share/lbctl/ansible/roles/lbctl/defaults/main.yml",
		"/usr/share/lbctl/ansible/roles/lbctl/handlers/main.yml",
		"/usr/share/lbctl/ansible/roles/lbctl/tasks/gate.yml",
		"/usr/share/lbctl/ansible/roles/lbctl/tasks/main.yml",
		"/usr/share/lbctl/ansible/roles/lbctl/tasks/rollout.yml",
		"/usr/share/lbctl/ansible/roles/lbctl/tasks/server.yml",
		"/usr/share/lbctl/ansible/roles/lbctl/tasks/setup.yml",
		"/usr/share/lbctl/ansible/roles/lbctl/templates/lbctl.yaml.j2",
		"/usr/share/lbctl/ansible/rollout.yml",
		"/usr/share/lbctl/ansible/server.yml",
		"/usr/share/lbctl/ansible/setup.yml",
		"/usr/share/lbctl/grafana/lbctl-site.json",
		"/usr/share/lintian/overrides/lbctl",
		"/usr/share/zsh/vendor-completions/_lbctl",
	}
	wantDirs      = []string{"/etc/lbctl/trusted.d"}
	wantConffiles = []string{"/etc/default/lbctl-sync", "/etc/lbctl/lbctl.yaml"}
	units         = []string{"lb-haproxy@.service", "lbctl-agent.service", "lbctl-sync.service", "lbctl-sync.timer"}
)

var (
	buildOnce sync.Once
	buildDir  string
	built     struct {
		bin, deb string
		err      error
		log      string
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildDeb builds lbctl (CGO_ENABLED=0, as `make build` does) and the
// package once for all tests.
func buildDeb(t *testing.T) (bin, deb string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds lbctl and the package")
	}
	buildOnce.Do(func() {
		var err error
		if buildDir, err = os.MkdirTemp("", "lbctl-deb-test-"); err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(buildDir, "lbctl")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+testVersion, "-o", built.bin, "./cmd/lbctl")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err, built.log = err, string(out)
			return
		}
		built.deb, built.err = Build(Options{Root: "..", Binary: built.bin, Version: testVersion,
			OutDir: filepath.Join(buildDir, "dist"), MTime: testMTime})
	})
	if built.err != nil {
		t.Fatalf("build: %v\n%s", built.err, built.log)
	}
	return built.bin, built.deb
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps installs it)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDebVersion(t *testing.T) {
	ct := time.Date(2026, 11, 24, 17, 23, 9, 0, time.UTC)
	tests := []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.abc1234"},
		{"1.0", "1.0"},
		{"387e63b", "0.0~git20261124172309.387e63b"},
		{"387e63b-dirty", "0.0~git20261124172309.387e63b+dirty"},
		{"dev", ""},
		{"v1.2.3 rm -rf", ""},
	}
	for _, tt := range tests {
		got, err := DebVersion(tt.in, ct)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("DebVersion(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	// A later commit sorts higher.
	need(t, "dpkg")
	a, _ := DebVersion("387e63b", ct)
	b, _ := DebVersion("0a1b2c3", ct.Add(time.Minute))
	if err := exec.Command("dpkg", "--compare-versions", b, "gt", a).Run(); err != nil {
		t.Errorf("%s does not sort after %s", b, a)
	}
}

// TestContents: dpkg-deb lists every expected file, the control fields and
// conffiles are right, and the generated files are what they claim.
func TestContents(t *testing.T) {
	need(t, "dpkg-deb")
	bin, deb := buildDeb(t)
	if filepath.Base(deb) != "lbctl_"+testVersion+"_amd64.deb" {
		t.Errorf("file name %s", filepath.Base(deb))
	}
	var files, dirs []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "--contents", deb)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("contents line %q", l)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if f[1] != "root/root" {
			t.Errorf("%s owned by %s", p, f[1])
		}
		switch f[0][0] {
		case 'd':
			dirs = append(dirs, p)
		case '-':
			files = append(files, p)
			if want := map[bool]string{true: "-rwxr-xr-x", false: "-rw-r--r--"}[p == "/usr/bin/lbctl"]; f[0] != want {
				t.Errorf("%s mode %s, want %s", p, f[0], want)
			}
		default:
			t.Errorf("unexpected entry %q", l)
		}
	}
	slices.Sort(files)
	// Every file of the Ansible role is shipped (and so listed above).
	filepath.WalkDir("ansible", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !slices.Contains(wantFiles, "/usr/share/lbctl/"+p) {
			t.Errorf("ansible/%s is not shipped: add it to nfpm.yaml and wantFiles", strings.TrimPrefix(p, "ansible/"))
		}
		return err
	})
	// Every man page the binary makes, and only those: lbctl.1.gz and one
	// per command.
	want := slices.Clone(wantFiles)
	pages := t.TempDir()
	run(t, bin, "man", "--dir", pages)
	names, _ := filepath.Glob(filepath.Join(pages, "*.1"))
	if len(names) < 30 {
		t.Errorf("lbctl man --dir wrote %d pages", len(names))
	}
	for _, n := range names {
		want = append(want, "/usr/share/man/man1/"+filepath.Base(n)+".gz")
	}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range wantDirs {
		if !slices.Contains(dirs, d) {
			t.Errorf("directory %s not shipped", d)
		}
	}

	info := run(t, "dpkg-deb", "--field", deb)
	for _, want := range []string{"Package: lbctl\n", "Version: " + testVersion + "\n", "Architecture: amd64\n",
		"Depends: haproxy, bird2, nftables\n", "Section: net\n", "Priority: optional\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "--control", deb, ctl)
	conffiles, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if got := strings.Fields(string(conffiles)); !slices.Equal(got, wantConffiles) {
		t.Errorf("conffiles %v, want %v", got, wantConffiles)
	}
	for _, s := range []string{"postinst", "prerm"} {
		fi, err := os.Stat(filepath.Join(ctl, s))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", s, fi, err)
		}
	}

	root := t.TempDir()
	run(t, "dpkg-deb", "--extract", deb, root)
	// Shipped files are the repository's.
	for src, dst := range map[string]string{
		"systemd/lb-haproxy@.service": "/lib/systemd/system/lb-haproxy@.service",
		"systemd/lbctl-agent.service": "/lib/systemd/system/lbctl-agent.service",
		"etc/lbctl.yaml":              "/etc/lbctl/lbctl.yaml",
		"tmpfiles.d/lbctl.conf":       "/usr/lib/tmpfiles.d/lbctl.conf",
	} {
		a, _ := os.ReadFile(src)
		b, _ := os.ReadFile(filepath.Join(root, dst))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from packaging/%s", dst, src)
		}
	}
	// Man page and changelog: gzip -9n (no name, no time, best
	// compression), and the content expected.
	for _, p := range []string{"/usr/share/man/man1/lbctl.1.gz", "/usr/share/man/man1/lbctl-sync.1.gz", "/usr/share/doc/lbctl/changelog.gz"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 10 || b[3] != 0 || !bytes.Equal(b[4:8], []byte{0, 0, 0, 0}) || b[8] != 2 {
			t.Errorf("%s: gzip header % x is not gzip -9n's", p, b[:10])
		}
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(z)
		want := map[string]*regexp.Regexp{
			"/usr/share/man/man1/lbctl.1.gz":      regexp.MustCompile(`(?s)^\.TH LBCTL 1 .*\n\.SH DESCRIPTION\n.*\n\.SH COMMANDS\n.*\\fBagent\\fR.*\n\.SH ENVIRONMENT\n.*LBCTL_KEY_PASSPHRASE.*\n\.SH EXIT STATUS\n.*\n\.SH EXAMPLES\n`),
			"/usr/share/man/man1/lbctl-sync.1.gz": regexp.MustCompile(`(?s)^\.TH LBCTL-SYNC 1 .*\n\.SH OPTIONS\n.*\\fB\\-\\-source\\fR.*\n\.SH FILES\n.*/etc/lbctl/lbctl\.yaml.*\n\.SH ENVIRONMENT\n.*LBCTL_SYNC_SOURCE.*\n\.SH EXIT STATUS\n`),
			"/usr/share/doc/lbctl/changelog.gz":   regexp.MustCompile(`^lbctl \(` + regexp.QuoteMeta(testVersion) + `\) unstable; urgency=medium\n`),
		}[p]
		if !want.Match(text) {
			t.Errorf("%s does not match %s:\n%.400s", p, want, text)
		}
	}
	if _, err := exec.LookPath("dpkg-parsechangelog"); err == nil {
		out := run(t, "sh", "-c", "gzip -dc "+filepath.Join(root, "usr/share/doc/lbctl/changelog.gz")+" | dpkg-parsechangelog -l- -SVersion")
		if strings.TrimSpace(out) != testVersion {
			t.Errorf("dpkg-parsechangelog: %q", out)
		}
	}
	copyright, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/lbctl/copyright"))
	for _, mod := range []string{"github.com/urfave/cli/v2 v2.27.7", "github.com/cilium/ebpf v0.22.0", "aead.dev/minisign"} {
		if !strings.Contains(string(copyright), mod) {
			t.Errorf("copyright does not list %s", mod)
		}
	}
	// The bash completion completes subcommands and flags through the
	// packaged binary.
	if _, err := exec.LookPath("bash"); err == nil {
		script := `source "$1"; PATH="$2:$PATH"
COMP_WORDS=(lbctl sy); COMP_CWORD=1; _lbctl; echo "${COMPREPLY[*]}"
COMP_WORDS=(lbctl sync --max); COMP_CWORD=2; _lbctl; echo "${COMPREPLY[*]}"`
		out := run(t, "bash", "-c", script, "bash", filepath.Join(root, "usr/share/bash-completion/completions/lbctl"), filepath.Join(root, "usr/bin"))
		if out != "sync\n--max-delay\n" {
			t.Errorf("bash completion gave %q", out)
		}
	}
}

// TestReproducible: the same inputs give the same bytes.
func TestReproducible(t *testing.T) {
	bin, deb := buildDeb(t)
	again, err := Build(Options{Root: "..", Binary: bin, Version: testVersion, OutDir: t.TempDir(), MTime: testMTime})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(deb)
	b, _ := os.ReadFile(again)
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Errorf("two builds differ: %d and %d bytes", len(a), len(b))
	}
}

// TestLintian: no errors and no warnings (overrides are listed in
// packaging/debian/lintian-overrides); the rest is logged.
func TestLintian(t *testing.T) {
	need(t, "lintian")
	_, deb := buildDeb(t)
	// (--show-overrides would make --fail-on count overridden tags.)
	out, err := exec.Command("lintian", "--pedantic", "-I", "-E", "--fail-on", "error,warning", deb).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	if err != nil {
		t.Errorf("lintian: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			t.Errorf("lintian: %s", l)
		}
	}
}

// TestDefaultConfig: the shipped lbctl.yaml loads, and uncommenting every
// setting in it loads too and gives the defaults it claims.
func TestDefaultConfig(t *testing.T) {
	b, err := os.ReadFile("etc/lbctl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	shipped := filepath.Join(dir, "shipped.yaml")
	os.WriteFile(shipped, b, 0o644)
	setting := regexp.MustCompile(`(?m)^#( *[a-z_]+:.*)$`)
	uncommented := setting.ReplaceAll(b, []byte("$1"))
	if n := len(setting.FindAll(b, -1)); n < 20 {
		t.Fatalf("only %d commented settings found", n)
	}
	all := filepath.Join(dir, "all.yaml")
	os.WriteFile(all, uncommented, 0o644)
	def, err := config.Load(shipped)
	if err != nil {
		t.Fatalf("shipped lbctl.yaml: %v", err)
	}
	got, err := config.Load(all)
	if err != nil {
		t.Fatalf("lbctl.yaml with every setting uncommented: %v\n%s", err, uncommented)
	}
	if got.Node != "lb1.example.org" {
		t.Errorf("node %q", got.Node)
	}
	got.Node = def.Node
	if got.Site != "campus" {
		t.Errorf("site %q", got.Site)
	}
	got.Site = def.Site // an example, as node: no default but the pin
	// Load leaves these zero; their owners apply the defaults: the agent
	// (health/agent.Config: 1s, 200ms, probe interval 5s, rise 3, fall 2)
	// and the renderer.
	def.Agent.Interval = config.Duration(time.Second)
	def.Agent.FastInterval = config.Duration(200 * time.Millisecond)
	def.Agent.ProbeInterval = config.Duration(5 * time.Second)
	def.Agent.Rise, def.Agent.Fall = 3, 2
	def.HAProxy.MaxConn = haproxy.DefaultMaxConn
	if !reflect.DeepEqual(got, def) {
		t.Errorf("the settings shown are not the defaults:\n got %+v\nwant %+v", got, def)
	}
}

// TestSyncDefaults: every variable of /etc/default/lbctl-sync is one that
// `lbctl sync` reads, and the sync service reads that file.
func TestSyncDefaults(t *testing.T) {
	bin, _ := buildDeb(t)
	help := run(t, bin, "sync", "--help")
	b, _ := os.ReadFile("etc/default/lbctl-sync")
	vars := regexp.MustCompile(`(?m)^#?(LBCTL_[A-Z_]+)=`).FindAllSubmatch(b, -1)
	if len(vars) < 3 {
		t.Fatalf("variables: %q", vars)
	}
	for _, v := range vars {
		if !strings.Contains(help, "$"+string(v[1])+"]") {
			t.Errorf("%s is not read by lbctl sync:\n%s", v[1], help)
		}
	}
	unit, _ := os.ReadFile("systemd/lbctl-sync.service")
	if !strings.Contains(string(unit), "EnvironmentFile=/etc/default/lbctl-sync\n") {
		t.Error("lbctl-sync.service does not read /etc/default/lbctl-sync")
	}
}

// installScript installs the package into a throwaway root: an overlay of
// the host's / in a private mount namespace (the host's packages satisfy
// the dependencies, the upper layer is a tmpfs that disappears with the
// namespace). It prints sections "== name" the test checks.
const installScript = `set -u
D=$1 DEB=$2
mount -t tmpfs tmpfs "$D" || exit 77
mkdir -p "$D/upper" "$D/work" "$D/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" "$D/root" || exit 77
R=$D/root
mount -t proc proc "$R/proc"
echo "== install"; dpkg --root="$R" -i "$DEB" 2>&1; echo "rc=$?"
echo "== status"; dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Status} ${Version}\n' lbctl
echo "== version"; chroot "$R" /usr/bin/lbctl --version
echo "== dirs"; cd "$R" && stat -c '%n %a %U:%G' run/lbctl var/lib/lbctl etc/lbctl/certs etc/lbctl/trusted.d
for u in $UNITS; do
	echo "== verify $u"; systemd-analyze verify --man=no --root="$R" "$u" 2>&1; echo "rc=$?"
done
echo "== security"
for u in lbctl-agent.service lbctl-sync.service; do systemd-analyze security --offline=yes --root="$R" "$u" 2>&1 | tail -1; done
# A broken unit must fail the same check.
sed 's|^ExecStart=/usr/bin/lbctl|ExecStart=/usr/bin/lbctl-missing|' "$R/lib/systemd/system/lbctl-agent.service" > "$R/etc/systemd/system/lbctl-broken.service"
echo "== verify broken"; systemd-analyze verify --man=no --root="$R" lbctl-broken.service 2>&1; echo "rc=$?"
echo '{"serial":12}' > "$R/var/lib/lbctl/highest-serial.json"
echo "== remove"; dpkg --root="$R" -r lbctl >/dev/null 2>&1; echo "rc=$?"; ls "$R/usr/bin/lbctl" "$R/etc/lbctl/lbctl.yaml" 2>&1
echo "== purge"; dpkg --root="$R" -P lbctl >/dev/null 2>&1; echo "rc=$?"; ls "$R/etc/lbctl/lbctl.yaml" "$R/etc/default/lbctl-sync" 2>&1
echo "== after purge"; cat "$R/var/lib/lbctl/highest-serial.json" 2>&1
exit 0
`

// TestInstall installs the .deb into a throwaway root with dpkg (maintainer
// scripts included), runs the installed lbctl, checks the tmpfiles.d
// directories, verifies every shipped unit with systemd-analyze against
// that root, then removes and purges the package.
func TestInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts an overlay of / in a private mount namespace to install the package")
	}
	need(t, "unshare", "dpkg", "dpkg-query", "chroot", "systemd-analyze")
	_, deb := buildDeb(t)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", installScript, "sh", t.TempDir(), deb)
	cmd.Env = append(os.Environ(), "UNITS="+strings.Join(units, " "), "LC_ALL=C", "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 77 {
		t.Skipf("cannot mount tmpfs and overlay here:\n%s", out)
	}
	if err != nil {
		t.Fatalf("install script: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	sec := map[string]string{}
	for _, part := range strings.Split("\n"+string(out), "\n== ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		sec[name] = body + "\n" // the separator took the newline
	}
	check := func(name, want string) {
		t.Helper()
		if !strings.Contains(sec[name], want) {
			t.Errorf("%s: want %q in:\n%s", name, want, sec[name])
		}
	}
	check("install", "Setting up lbctl ("+testVersion+")")
	check("install", "rc=0")
	check("status", "install ok installed "+testVersion)
	check("version", "lbctl version "+testVersion)
	check("dirs", "run/lbctl 755 root:root\n")
	check("dirs", "var/lib/lbctl 750 root:root\n")
	check("dirs", "etc/lbctl/certs 750 root:haproxy\n")
	check("dirs", "etc/lbctl/trusted.d 755 root:root\n")
	for _, u := range units {
		// A template is verified through an instance (lb-haproxy@i).
		name := "verify " + u
		if sec[name] != "rc=0\n" {
			t.Errorf("systemd-analyze verify %s:\n%s", u, sec[name])
		}
	}
	check("verify broken", "lbctl-missing is not executable")
	if strings.Contains(sec["verify broken"], "rc=0") {
		t.Errorf("a unit with a missing binary passed verify:\n%s", sec["verify broken"])
	}
	check("remove", "rc=0\nls: cannot access")
	check("remove", "/usr/bin/lbctl': No such file")
	if strings.Contains(sec["remove"], "lbctl.yaml': No such file") {
		t.Error("remove (not purge) deleted the conffile")
	}
	check("purge", "rc=0\n")
	check("purge", "lbctl.yaml': No such file")
	check("purge", "lbctl-sync': No such file")
	// The anti-replay record outlives the package: a reinstalled node does
	// not take an older bundle than it last ran.
	check("after purge", `{"serial":12}`)
}
