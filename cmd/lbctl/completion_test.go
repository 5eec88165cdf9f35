//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// lbctlBinary builds lbctl once for the tests that run it as a program.
func lbctlBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lbctl-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "lbctl")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = &exec.Error{Name: "go build", Err: os.ErrInvalid}
			t.Logf("go build: %s", out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	t.Cleanup(func() {}) // the binary's directory lives as long as the test process
	return binPath
}

// completionNode is a directory with a bundle, a text file, a
// subdirectory and a node whose release 5 has two VIPs.
func completionNode(t *testing.T) (dir, config string) {
	t.Helper()
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "campus.bundle"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	state := filepath.Join(t.TempDir(), "state")
	store, err := release.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	st := &plan.State{Serial: 5, VIPs: []plan.VIP{{Name: "192.0.2.10"}, {Name: "192.0.2.11"}}}
	if err := store.Stage(&release.Release{Serial: 5, Bundle: []byte("bundle"), State: st}); err != nil {
		t.Fatal(err)
	}
	if err := store.Commit(5); err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(t.TempDir(), "lbctl.yaml")
	os.WriteFile(config, []byte("node: lb1\nstate_dir: "+state+"\n"), 0o644)
	return dir, config
}

// completionCases are command lines (the last word being typed) and the
// candidates every shell must offer.
var completionCases = []struct {
	line string
	want []string
}{
	{"lbctl sche", []string{"schema"}},
	{"lbctl schema ", []string{"defaults", "node", "service", "site"}},
	{"lbctl build --ou", []string{"--output"}},
	{"lbctl help rel", []string{"releases"}},
	{"lbctl verify ", []string{"campus.bundle", "sub/"}},
	{"lbctl verify --pubkey ", []string{"campus.bundle", "notes.txt", "sub/"}},
	{"lbctl check ", []string{"sub/"}},
	{"lbctl drain ", []string{"192.0.2.10", "192.0.2.11"}},
	{"lbctl logs 192.0.2.1", []string{"192.0.2.10", "192.0.2.11"}},
	{"lbctl completion ", []string{"bash", "fish", "zsh"}},
}

// TestCompletionBash sources `lbctl completion bash` in bash and completes.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := lbctlBinary(t)
	dir, config := completionNode(t)
	for _, c := range completionCases {
		script := `source <(lbctl completion bash)
read -ra COMP_WORDS <<< "$1"; [[ $1 == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _lbctl
for w in "${COMPREPLY[@]}"; do [[ -d $w ]] && w+=/; echo "$w"; done`
		got := runShell(t, dir, config, bin, bash, "-c", script, "bash", c.line)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("bash: %q completes to %q, want %q", c.line, got, c.want)
		}
	}
}

// TestCompletionFish asks fish (complete -C) with the fish script loaded.
func TestCompletionFish(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("no fish")
	}
	bin := lbctlBinary(t)
	dir, config := completionNode(t)
	for _, c := range completionCases {
		got := runShell(t, dir, config, bin, fish, "--no-config", "-c", `lbctl completion fish | source; complete -C"$argv[1]"`, c.line)
		for i, g := range got {
			got[i], _, _ = strings.Cut(g, "\t")
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("fish: %q completes to %q, want %q", c.line, got, c.want)
		}
	}
}

// TestCompletionZsh runs the zsh function with _describe and _files
// replaced by functions that print what they were given.
func TestCompletionZsh(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("no zsh")
	}
	bin := lbctlBinary(t)
	dir, config := completionNode(t)
	for _, c := range completionCases {
		script := `lbctl completion zsh > $TMPDIR/_lbctl
_describe() { local w; for w in "${(@P)${@[-1]}}"; do print -r -- "${${w%%:*}//\\:/:}"; done }
_files() { local f; if [[ $1 == -/ ]]; then for f in *(N/); do print -r -- $f/; done;
	elif [[ $1 == -g ]]; then for f in ${~2}(N) *(N/); do [[ -d $f ]] && f=$f/; print -r -- $f; done;
	else for f in *(N); do [[ -d $f ]] && f=$f/; print -r -- $f; done; fi }
words=(${(z)1}); [[ $1 == *" " ]] && words+=("")
CURRENT=${#words}
source $TMPDIR/_lbctl >/dev/null
PREFIX=${words[CURRENT]}
_lbctl | while read -r l; do [[ $l == $PREFIX* ]] && print -r -- $l; done`
		got := runShell(t, dir, config, bin, zsh, "-f", "-c", script, "zsh", c.line)
		slices.Sort(got)
		got = slices.Compact(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("zsh: %q completes to %q, want %q", c.line, got, c.want)
		}
	}
}

func runShell(t *testing.T, dir, config, bin string, name string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "LBCTL_CONFIG="+config, "TMPDIR="+t.TempDir(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
