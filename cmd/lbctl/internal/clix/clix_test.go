package clix

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func testApp() *cli.App {
	leaf := &cli.Command{Name: "check", ArgsUsage: "DIR", Flags: []cli.Flag{
		&cli.BoolFlag{Name: "json"}, &cli.StringFlag{Name: "zone", Usage: "zone `FILE`"},
		&cli.IntFlag{Name: "lines", Aliases: []string{"n"}}}}
	group := &cli.Command{Name: "render", Subcommands: []*cli.Command{
		{Name: "node", ArgsUsage: "DIR HOSTNAME OUT", Flags: []cli.Flag{&cli.StringFlag{Name: "dns"}}}}}
	return &cli.App{Name: "lbctl", Commands: []*cli.Command{leaf, group,
		{Name: "schema", ArgsUsage: "[service|defaults|node|site]"},
		{Name: "drain", ArgsUsage: "VIP...|--all", Flags: []cli.Flag{&cli.StringFlag{Name: "config", Usage: "`FILE`"}, &cli.BoolFlag{Name: "all"}}},
		{Name: "verify", ArgsUsage: "[BUNDLE]", Flags: []cli.Flag{&cli.StringFlag{Name: "pubkey", Usage: "key `FILE`"}}},
		{Name: "stub", SkipFlagParsing: true}}}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"check DIR --json", "check --json -- DIR"},
		{"check DIR --zone z.zone --json", "check --zone z.zone --json -- DIR"},
		{"check --zone=z DIR -n 3", "check --zone=z -n 3 -- DIR"},
		{"check DIR -- --json", "check -- DIR --json"},
		{"check -", "check -- -"},
		{"check --json", "check --json"},
		{"check DIR --help", "check --help"},
		{"check DIR --zone", "check --zone"}, // the parser says --zone needs a value
		{"render node DIR lb1 OUT --dns 192.0.2.53", "render node --dns 192.0.2.53 -- DIR lb1 OUT"},
		{"render nde DIR", "render nde DIR"},
		{"buidl DIR --json", "buidl DIR --json"},
		{"stub a --b c", "stub a --b c"},
		{"--version", "--version"},
	} {
		got := strings.Join(Normalize(testApp(), append([]string{"lbctl"}, strings.Fields(c.in)...))[1:], " ")
		if got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"build", "check", "diff", "drain", "undrain", "render", "resolve", "status", "json", "output"}
	for in, want := range map[string]string{
		"buidl": "build", "chekc": "check", "rendr": "render", "stauts": "status", "jsn": "json", "outptu": "output",
		"resol": "resolve", // a prefix of one command only
		"x":     "", "zzzzz": "", "d": "", "": "",
	} {
		if got := Suggest(in, cands); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1d": 24 * time.Hour, "30d": 720 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "0": 0, "-1ns": -1,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1x", "d", "1.5d", "1dd", ""} {
		if _, err := ParseDuration(in); err == nil || !strings.Contains(err.Error(), "7d") {
			t.Errorf("ParseDuration(%q): %v, want an error that shows the forms", in, err)
		}
	}
}

// The flag works through urfave/cli: days, the environment, and a bad
// value as a usage error.
func TestDurationFlag(t *testing.T) {
	var got time.Duration
	app := &cli.App{Name: "lbctl", Writer: &strings.Builder{}, ErrWriter: &strings.Builder{}, ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{{Name: "wait", Flags: []cli.Flag{&DurationFlag{Name: "for", Value: time.Minute, EnvVars: []string{"CLIX_TEST_FOR"}}},
			Action: func(c *cli.Context) error { got = c.Duration("for"); return nil }}}}
	Install(app)
	for _, c := range []struct {
		args []string
		env  string
		want time.Duration
		code int
	}{
		{[]string{"wait"}, "", time.Minute, 0},
		{[]string{"wait", "--for", "2d"}, "", 48 * time.Hour, 0},
		{[]string{"wait"}, "1d1h", 25 * time.Hour, 0},
		{[]string{"wait", "--for", "2x"}, "", 0, 2},
	} {
		t.Setenv("CLIX_TEST_FOR", c.env)
		got = 0
		if code := Main(app, append([]string{"lbctl"}, c.args...)); code != c.code || got != c.want {
			t.Errorf("%v (env %q): exit %d, %v; want %d, %v", c.args, c.env, code, got, c.code, c.want)
		}
	}
}

func TestWriteTree(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	files := []TreeFile{{Path: "a/x.cfg", Data: []byte("x")}, {Path: "b.conf", Data: []byte("b")}}
	written, err := WriteTree(out, files)
	if err != nil || len(written) != 2 {
		t.Fatalf("new directory: %v %v", written, err)
	}
	// A file lbctl no longer renders is gone after the next render.
	os.WriteFile(filepath.Join(out, "a", "stale.cfg"), []byte("old"), 0o644)
	if _, err := WriteTree(out, files[:1]); err != nil {
		t.Fatal(err)
	}
	if got := listTree(t, out); !slices.Equal(got, []string{TreeMarker, "a/x.cfg"}) {
		t.Errorf("after a second render: %v", got)
	}
	// An empty directory is taken; a foreign one is refused and left as it is.
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := WriteTree(empty, files); err != nil {
		t.Errorf("empty directory: %v", err)
	}
	foreign := filepath.Join(dir, "home")
	os.Mkdir(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
	if _, err := WriteTree(foreign, files); !errors.Is(err, ErrNotOurs) {
		t.Errorf("foreign directory: %v, want ErrNotOurs", err)
	}
	if got := listTree(t, foreign); !slices.Equal(got, []string{"notes.txt"}) {
		t.Errorf("foreign directory changed: %v", got)
	}
	if _, err := WriteTree(filepath.Join(dir, "x"), []TreeFile{{Path: "../escape", Data: nil}}); err == nil {
		t.Error("a path leaving the directory was written")
	}
	// Nothing is left next to the directories.
	if got := listTree(t, dir); slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, ".new-") }) {
		t.Errorf("temporary directories left: %v", got)
	}
}

func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func TestComplete(t *testing.T) {
	cp := Completer{App: testApp(), VIPs: func(config string) ([]string, error) {
		if config == "other.yaml" {
			return []string{"198.51.100.1"}, nil
		}
		return []string{"192.0.2.10", "192.0.2.11"}, nil
	}}
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{""}, "check render schema drain verify stub"},
		{[]string{"ch"}, "check"},
		{[]string{"schema", ""}, "service defaults node site"},
		{[]string{"schema", "s"}, "service site"},
		{[]string{"render", ""}, "node"},
		{[]string{"render", "node", "--"}, "--help --dns"},
		{[]string{"check", "--j"}, "--json"},
		{[]string{"check", "-"}, "--help -h --json --zone --lines -n"},
		{[]string{"check", ""}, ":dirs"},
		{[]string{"check", "--zone", ""}, ":files"},
		{[]string{"check", "DIR", "--json", ""}, ""},
		{[]string{"verify", ""}, ":files:.bundle"},
		{[]string{"verify", "--pubkey", ""}, ":files"},
		{[]string{"render", "node", "DIR", ""}, ""},
		{[]string{"render", "node", "DIR", "lb1", ""}, ":dirs"},
		{[]string{"drain", ""}, "192.0.2.10 192.0.2.11"},
		{[]string{"drain", "192.0.2.10", "192.0.2.1"}, "192.0.2.10 192.0.2.11"},
		{[]string{"drain", "--config", "other.yaml", ""}, "198.51.100.1"},
	} {
		cm := cp.Complete(c.words)
		var got []string
		for _, x := range cm.Candidates {
			got = append(got, x.Word)
		}
		if cm.Files != "" {
			got = append(got, ":"+cm.Files)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("Complete(%q) = %q, want %q", c.words, strings.Join(got, " "), c.want)
		}
	}
}
