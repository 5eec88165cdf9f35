// Package docs holds the test that keeps docs/deploy.md true (the guide
// itself is Markdown; this package has no code of its own).
package docs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/internal/doccmd"
)

// Where a block of deploy.md runs (the first word after sh):
//   - admin: here, by TestDeployGuide, in a scratch directory holding a
//     copy of examples/campus as campus/ (no root, no network);
//   - ansible, node: against the sandbox's nodes, by
//     test/e2e.TestAnsibleRollout (as root), which reads the same blocks;
//   - covered TEST...: by the named tests in an equivalent form (a .deb
//     installed into a throwaway root, sync against a test server, ...).
var blockKinds = []string{"admin", "ansible", "node", "covered"}

func guide(t *testing.T) []doccmd.Block {
	t.Helper()
	md, err := os.ReadFile("deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := doccmd.Parse(md)
	if err != nil {
		t.Fatalf("deploy.md: %v", err)
	}
	if len(blocks) == 0 {
		t.Fatal("deploy.md: no sh blocks")
	}
	return blocks
}

// TestDeployGuide: every sh block of deploy.md says where it runs; a
// covered block names tests that exist; every lbctl command names
// subcommands and flags lbctl has, every ansible command playbooks and
// variables the role has; and the admin blocks run here, in order, with the
// outputs the guide describes.
func TestDeployGuide(t *testing.T) {
	blocks := guide(t)
	lbctl := buildLbctl(t)
	cli := &cliHelp{bin: lbctl, help: map[string]string{}}
	for _, b := range blocks {
		if len(b.Tags) == 0 || !slices.Contains(blockKinds, b.Tags[0]) {
			t.Errorf("deploy.md:%d: a sh block says where it runs (sh %s), not %q", b.Line, strings.Join(blockKinds, "|"), b.Tags)
			continue
		}
		if b.Tags[0] == "covered" {
			checkCovered(t, b)
		}
		for _, c := range b.Commands {
			for _, part := range strings.Split(c.Text, "&&") {
				f := strings.Fields(part)
				switch {
				case len(f) > 0 && f[0] == "lbctl":
					cli.check(t, c.Line, f[1:])
				case len(f) > 0 && strings.HasPrefix(f[0], "ansible"):
					checkAnsible(t, c.Line, f)
				}
			}
		}
	}
	runAdmin(t, lbctl, doccmd.Tagged(blocks, "admin"))
}

func buildLbctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin", "lbctl")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/lbctl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build lbctl: %v\n%s", err, out)
	}
	return bin
}

var testFunc = regexp.MustCompile(`^([a-z0-9/]+)\.(Test[A-Za-z0-9_]+)$`)

// checkCovered checks that each test a covered block names exists.
func checkCovered(t *testing.T, b doccmd.Block) {
	t.Helper()
	if len(b.Tags) < 2 {
		t.Errorf("deploy.md:%d: a covered block names the tests that run its commands (package.TestName)", b.Line)
	}
	for _, name := range b.Tags[1:] {
		m := testFunc.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("deploy.md:%d: %q is not DIR.TestName (DIR relative to the repository root)", b.Line, name)
			continue
		}
		files, _ := filepath.Glob(filepath.Join("..", m[1], "*_test.go"))
		found := false
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err == nil && bytes.Contains(src, []byte("func "+m[2]+"(t *testing.T)")) {
				found = true
			}
		}
		if !found {
			t.Errorf("deploy.md:%d: no test %s in %s", b.Line, m[2], m[1])
		}
	}
}

// cliHelp checks lbctl command lines against lbctl's own help.
type cliHelp struct {
	bin  string
	help map[string]string
}

func (c *cliHelp) helpOf(t *testing.T, path []string) string {
	key := strings.Join(path, " ")
	if h, ok := c.help[key]; ok {
		return h
	}
	args := append(slices.Clone(path), "--help")
	if len(path) == 0 {
		args = []string{"help"} // lbctl's own help of the top level
	}
	out, err := exec.Command(c.bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("lbctl %s --help: %v\n%s", key, err, out)
	}
	c.help[key] = string(out)
	return c.help[key]
}

// check checks one lbctl command line: its subcommands, then every flag.
func (c *cliHelp) check(t *testing.T, line int, args []string) {
	t.Helper()
	var path []string
	i := 0
	for ; i < len(args) && !strings.HasPrefix(args[i], "-"); i++ {
		if !listsCommand(c.helpOf(t, path), args[i]) {
			break
		}
		path = append(path, args[i])
	}
	if len(path) == 0 {
		t.Errorf("deploy.md:%d: lbctl has no command %q", line, strings.Join(args, " "))
		return
	}
	help := c.helpOf(t, path)
	for _, a := range args[i:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		flag, _, _ := strings.Cut(a, "=")
		if !regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(flag) + `[\s,=]`).MatchString(help) {
			t.Errorf("deploy.md:%d: lbctl %s has no flag %s", line, strings.Join(path, " "), flag)
		}
	}
}

// listsCommand reports whether help lists name under COMMANDS.
func listsCommand(help, name string) bool {
	_, cmds, ok := strings.Cut(help, "COMMANDS:")
	if !ok {
		return false
	}
	cmds, _, _ = strings.Cut(cmds, "OPTIONS:")
	for _, l := range strings.Split(cmds, "\n") {
		names, _, _ := strings.Cut(strings.TrimSpace(l), "  ")
		if slices.Contains(strings.Split(names, ", "), name) {
			return true
		}
	}
	return false
}

// checkAnsible checks that an ansible command names the role's playbooks
// and variables.
func checkAnsible(t *testing.T, line int, f []string) {
	t.Helper()
	defaults, err := os.ReadFile("../packaging/ansible/roles/lbctl/defaults/main.yml")
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range f {
		switch {
		case strings.HasSuffix(a, ".yml") && a != "inventory.yml" && (i == 0 || f[i-1] != "-i"):
			if _, err := os.Stat(filepath.Join("../packaging/ansible", a)); err != nil {
				t.Errorf("deploy.md:%d: no playbook %s in packaging/ansible", line, a)
			}
		case a == "-e" && i+1 < len(f):
			name, _, _ := strings.Cut(f[i+1], "=")
			if name != "lbctl_batch" && !bytes.Contains(defaults, []byte("\n"+name+":")) && !bytes.Contains(defaults, []byte("# "+name+":")) {
				t.Errorf("deploy.md:%d: the role has no variable %s (roles/lbctl/defaults/main.yml)", line, name)
			}
		}
	}
}

// runAdmin runs the admin commands in order in one shell, in a scratch
// directory with campus/ (examples/campus), lbctl on the PATH and the key's
// passphrase in the environment, and checks what the guide says they show.
func runAdmin(t *testing.T, lbctl string, cmds []doccmd.Command) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "campus"), os.DirFS("../examples/campus")); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -eu\n")
	for i, c := range cmds {
		fmt.Fprintf(&script, "echo '+++ %d'\n%s\n", i, c.Text)
	}
	sh := exec.Command("/bin/sh", "-c", script.String())
	sh.Dir = dir
	sh.Env = append(os.Environ(), "PATH="+filepath.Dir(lbctl)+":"+os.Getenv("PATH"), "LBCTL_KEY_PASSPHRASE=deploy guide test")
	out, err := sh.CombinedOutput()
	outs := splitOutputs(string(out), len(cmds))
	if err != nil {
		last := 0
		for i := range outs {
			if outs[i] != "" {
				last = i
			}
		}
		t.Fatalf("deploy.md:%d: %s: %v\n%s", cmds[last].Line, cmds[last].Text, err, out)
	}
	for i, c := range cmds {
		t.Logf("deploy.md:%d: %s\n%s", c.Line, c.Text, outs[i])
	}
	want := map[string][]string{
		"lbctl inspect": {"site      campus (signed in the manifest", "certificates (on every node; never in the bundle)", "/etc/lbctl/certs/wildcard.campus.example.pem", "/etc/lbctl/certs/ldap.campus.example.pem"},
		"cat site-files/route-reflectors/rr1.conf": {"protocol bgp lbctl_lb1", "protocol bgp lbctl_lb2", "rr client;"},
		"lbctl diff": {"services: unchanged"},
		"lbctl build campus --key campus-admin.key --serial $S2": {"against serial"},
	}
	for prefix, subs := range want {
		i := slices.IndexFunc(cmds, func(c doccmd.Command) bool { return strings.HasPrefix(c.Text, prefix) })
		if i < 0 {
			t.Errorf("deploy.md has no admin command %q any more: update the test", prefix)
			continue
		}
		for _, s := range subs {
			if !strings.Contains(outs[i], s) {
				t.Errorf("deploy.md:%d: %s: the output lacks %q:\n%s", cmds[i].Line, cmds[i].Text, s, outs[i])
			}
		}
	}
	for _, p := range []string{"lb1-files/bird/bird.conf", "icinga2"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("after the admin commands: %v", err)
		}
	}
}

// splitOutputs splits the script's output at the "+++ N" markers.
func splitOutputs(out string, n int) []string {
	outs := make([]string, n)
	cur := -1
	for _, l := range strings.SplitAfter(out, "\n") {
		var i int
		if _, err := fmt.Sscanf(l, "+++ %d\n", &i); err == nil && i >= 0 && i < n {
			cur = i
			continue
		}
		if cur >= 0 {
			outs[cur] += l
		}
	}
	return outs
}
