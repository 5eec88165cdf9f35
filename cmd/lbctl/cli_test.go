package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// adminFixture is what the admin-side tests share: a campus tree, a key
// pair and a bundle built from the tree with it.
type adminFixture struct {
	dir, tree, key, pub, bundle string
}

func newAdminFixture(t *testing.T) adminFixture {
	t.Helper()
	dir := t.TempDir()
	f := adminFixture{dir: dir, tree: campusCopy(t), key: filepath.Join(dir, "site")}
	keygen(t, f.key)
	f.pub, f.bundle = f.key+".pub", filepath.Join(dir, "campus.bundle")
	if _, stderr, code := run(t, "build", f.tree, "-o", f.bundle, "--key", f.key+".key", "--serial", "10"); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	return f
}

// TestCLIConventions: unknown commands and flags get a suggestion and exit
// 2 with one line on stderr; help and version work; flags may follow
// arguments; failures exit 1.
func TestCLIConventions(t *testing.T) {
	f := newAdminFixture(t)
	broken := campusCopy(t)
	appendFile(t, filepath.Join(broken, "site.yaml"), "colour: blue\n")
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring ("" no check)
		stderr string // substring of the one line on stderr ("" none)
	}{
		{"unknown command", []string{"buidl"}, 2, "", `unknown command "buidl"; did you mean "build"?`},
		{"unknown subcommand", []string{"render", "nde", f.tree, "lb1", "out"}, 2, "", `render: unknown command "nde"; did you mean "node"?`},
		{"misspelt flag after the argument", []string{"check", f.tree, "--jsn"}, 2, "", "check: unknown flag --jsn; did you mean --json?"},
		{"misspelt flag before the argument", []string{"build", "--outptu", "x.bundle", f.tree}, 2, "", "build: unknown flag --outptu; did you mean --output?"},
		{"flag without its value", []string{"check", f.tree, "--zone"}, 2, "", "check: flag --zone needs a value"},
		{"bad duration", []string{"push", "--health-timeout", "1x", f.bundle, "lb1"}, 2, "", `push: invalid value "1x" for --health-timeout: duration "1x": want`},
		{"bad expiry", []string{"build", f.tree, "-o", "x", "--key", f.key + ".key", "--expires", "soon"}, 2, "", `--expires "soon"`},
		{"too many arguments", []string{"check", f.tree, f.tree}, 2, "", "want exactly one argument"},
		{"help", []string{"help"}, 0, "COMMANDS:", ""},
		{"--help", []string{"--help"}, 0, "COMMANDS:", ""},
		{"-h", []string{"-h"}, 0, "COMMANDS:", ""},
		{"help of a command", []string{"help", "build"}, 0, "lbctl build [command options] DIR", ""},
		{"help of a subcommand", []string{"help", "render", "node"}, 0, "DIR HOSTNAME OUT", ""},
		{"help of an unknown command", []string{"help", "biuld"}, 2, "", `did you mean "build"?`},
		{"--help after the argument", []string{"check", f.tree, "--help"}, 0, "lbctl check [command options] DIR", ""},
		{"version", []string{"version"}, 0, "lbctl dev (commit ", ""},
		{"no command", nil, 0, "COMMANDS:", ""},
		{"flags after the argument", []string{"check", f.tree, "--zone", filepath.Join(f.tree, "campus.zone")}, 0, "ok: 16 services", ""},
		{"a failure exits 1", []string{"check", broken}, 1, "", "1 problem found"},
		{"an invalid bundle exits 1", []string{"verify", f.tree + "/site.yaml", "--pubkey", f.pub}, 1, "", "INVALID"},
	} {
		out, errOut, code := run(t, c.args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if c.name == "a failure exits 1" {
			lines = lines[len(lines)-1:] // the problem, then the count
		}
		switch {
		case code != c.code:
			t.Errorf("%s: lbctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", c.name, strings.Join(c.args, " "), code, c.code, out, errOut)
		case c.stdout != "" && !strings.Contains(out, c.stdout):
			t.Errorf("%s: stdout lacks %q:\n%s", c.name, c.stdout, out)
		case c.stderr == "" && errOut != "":
			t.Errorf("%s: stderr %q, want none", c.name, errOut)
		case c.stderr != "" && (len(lines) != 1 || !strings.Contains(lines[0], c.stderr) || !strings.HasPrefix(lines[0], "lbctl: ")):
			t.Errorf("%s: stderr %q, want one line \"lbctl: ...%s...\"", c.name, errOut, c.stderr)
		case c.code == 2 && out != "":
			t.Errorf("%s: a usage error printed on stdout:\n%s", c.name, out)
		}
	}
}

// TestVersionJSON: version, commit and Go version as JSON.
func TestVersionJSON(t *testing.T) {
	out, _, code := run(t, "version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	if v.Version != version || v.GoVersion != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version --json: %+v", v)
	}
}

// TestReadCommandsJSON: every read command of the admin side prints JSON
// with --json, also after its arguments, valid or not (node commands:
// TestNodeReadCommandsJSON).
func TestReadCommandsJSON(t *testing.T) {
	f := newAdminFixture(t)
	broken := campusCopy(t)
	appendFile(t, filepath.Join(broken, "site.yaml"), "colour: blue\n")
	for _, c := range []struct {
		args []string
		code int
		key  string // a key of the top-level object
	}{
		{[]string{"check", f.tree, "--json"}, 0, "problems"},
		{[]string{"check", "--json", broken}, 1, "problems"},
		{[]string{"resolve", f.tree, "--json"}, 0, "services"},
		{[]string{"schema", "service", "--json"}, 0, "properties"},
		{[]string{"version", "--json"}, 0, "go_version"},
		{[]string{"inspect", f.bundle, "--pubkey", f.pub, "--json"}, 0, "serial"},
		{[]string{"verify", f.bundle, "--json", "--pubkey", f.pub}, 0, "valid"},
		{[]string{"verify", filepath.Join(f.tree, "site.yaml"), "--pubkey", f.pub, "--json"}, 1, "error"},
	} {
		out, errOut, code := run(t, c.args...)
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil || code != c.code {
			t.Errorf("lbctl %s: exit %d (want %d), %v:\n%s%s", strings.Join(c.args, " "), code, c.code, err, out, errOut)
			continue
		}
		if _, ok := v[c.key]; !ok {
			t.Errorf("lbctl %s: no %q in %s", strings.Join(c.args, " "), c.key, out)
		}
	}
	// check --json: each problem with its file, line and column.
	out, _, _ := run(t, "check", broken, "--json")
	var res checkResult
	json.Unmarshal([]byte(out), &res)
	if res.OK || len(res.Problems) != 1 || res.Problems[0].File != filepath.Join(broken, "site.yaml") || res.Problems[0].Line == 0 ||
		res.Problems[0].Column != 1 || !strings.Contains(res.Problems[0].Message, "colour") {
		t.Errorf("check --json of a broken tree: %+v", res)
	}
}

// TestHelpDefaults: no flag's help shows two defaults, and no command
// offers urfave/cli's "help, h" subcommand.
func TestHelpDefaults(t *testing.T) {
	app := newApp()
	var paths [][]string
	for _, c := range app.Commands {
		if c.Hidden {
			continue
		}
		paths = append(paths, []string{c.Name})
		for _, s := range c.Subcommands {
			paths = append(paths, []string{c.Name, s.Name})
		}
	}
	for _, p := range paths {
		out, _, code := run(t, append(p, "--help")...)
		if code != 0 {
			t.Errorf("%v --help: exit %d", p, code)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Count(l, "(default:") > 1 {
				t.Errorf("lbctl %s --help: %q", strings.Join(p, " "), strings.TrimSpace(l))
			}
			if strings.Contains(l, "help, h") {
				t.Errorf("lbctl %s --help offers %q", strings.Join(p, " "), strings.TrimSpace(l))
			}
		}
	}
}

// TestManPages: one page per command with every section, and groff finds
// nothing wrong in any.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := run(t, "man", "--dir", dir); code != 0 {
		t.Fatalf("man --dir: %s", errOut)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	want := []string{"lbctl.1", "lbctl-build.1", "lbctl-check.1", "lbctl-render-node.1", "lbctl-verify.1", "lbctl-completion.1"}
	for _, w := range want {
		if !slices.Contains(pages, filepath.Join(dir, w)) {
			t.Errorf("no page %s", w)
		}
	}
	for _, p := range pages {
		b, _ := os.ReadFile(p)
		for _, s := range []string{".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH EXIT STATUS", ".SH SEE ALSO"} {
			if !strings.Contains(string(b), "\n"+s+"\n") {
				t.Errorf("%s has no %s", filepath.Base(p), s)
			}
		}
		if _, err := exec.LookPath("groff"); err == nil {
			out, _ := exec.Command("groff", "-man", "-z", "-ww", "-rCHECKSTYLE=3", p).CombinedOutput()
			if len(out) > 0 {
				t.Errorf("groff %s:\n%s", filepath.Base(p), out)
			}
		}
	}
	build, _ := os.ReadFile(filepath.Join(dir, "lbctl-build.1"))
	for _, s := range []string{".SH OPTIONS", `\fB\-\-expires\fR \fIDURATION\fR`, ".SH FILES", ".SH ENVIRONMENT", "LBCTL_KEY_PASSPHRASE", "LBCTL_PUBKEY", "SOURCE_DATE_EPOCH", ".SH EXAMPLES"} {
		if !strings.Contains(string(build), s) {
			t.Errorf("lbctl-build.1 lacks %q", s)
		}
	}
	if out, _, code := run(t, "man", "render", "node"); code != 0 || !strings.Contains(out, ".TH LBCTL-RENDER-NODE 1") {
		t.Errorf("man render node: %d %.100s", code, out)
	}
}
