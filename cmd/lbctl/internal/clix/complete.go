package clix

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
)

// CompleteCommand is the hidden command the completion scripts run:
// `lbctl __complete WORD... CURRENT` prints one candidate per line as
// "word<TAB>description", then at most one directive line: ":files",
// ":dirs" or ":files:.ext" (files ending in .ext, and directories).
const CompleteCommand = "__complete"

// BundleExt is the extension of bundle files, which arguments and flags
// named BUNDLE (or OLD and NEW) complete.
const BundleExt = ".bundle"

// Completer completes lbctl's command lines from the command definitions:
// subcommands, flags, the words an argument allows (schema
// service|defaults|node|site) and, by the placeholder of an argument or
// flag value, files (FILE), directories (DIR, OUT), bundles (BUNDLE, OLD,
// NEW), commands (COMMAND) and VIP names (VIP).
type Completer struct {
	App *cli.App
	// VIPs lists the VIPs of the release installed on this node, given
	// the --config typed ("" when none); nil or an error: none. It must be
	// cheap: local files only.
	VIPs func(config string) ([]string, error)
}

// Candidate is one completion.
type Candidate struct{ Word, Description string }

// Completion is what completes the current word.
type Completion struct {
	Candidates []Candidate
	// Files is the directive: "", "files", "dirs" or "files:.ext".
	Files string
}

// Command is the hidden __complete command.
func (cp Completer) Command() *cli.Command {
	return &cli.Command{Name: CompleteCommand, Hidden: true, SkipFlagParsing: true,
		Usage: "complete a command line (for the completion scripts)",
		Action: func(c *cli.Context) error {
			cp.App = c.App
			return cp.Complete(c.Args().Slice()).Write(c.App.Writer)
		}}
}

// Write prints the completion as CompleteCommand does.
func (cm Completion) Write(w io.Writer) error {
	for _, c := range cm.Candidates {
		if _, err := fmt.Fprintf(w, "%s\t%s\n", c.Word, oneLine(c.Description)); err != nil {
			return err
		}
	}
	if cm.Files != "" {
		_, err := fmt.Fprintf(w, ":%s\n", cm.Files)
		return err
	}
	return nil
}

// line is where the typed words lead: the command and its positional
// arguments so far.
type line struct {
	cmd    *cli.Command // nil: the app
	cmds   []*cli.Command
	flags  []cli.Flag
	args   []string
	config string
}

// Complete completes the last of words (the words after "lbctl"; the last
// one is being typed, maybe "").
func (cp Completer) Complete(words []string) Completion {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, typed := words[len(words)-1], words[:len(words)-1]
	l := cp.walk(typed)
	if n := len(typed); n > 0 && isFlag(typed[n-1]) && !strings.Contains(typed[n-1], "=") {
		if f := findFlag(l.flags, strings.TrimLeft(typed[n-1], "-")); f != nil && takesValue([]cli.Flag{f})[f.Names()[0]] {
			return cp.byPlaceholder(placeholder(f), l)
		}
	}
	var cm Completion
	switch {
	case strings.HasPrefix(cur, "-"):
		cm.Candidates = flagCandidates(l.flags)
	case l.cmd == nil || len(l.cmd.Subcommands) > 0:
		cm.Candidates = commandCandidates(l.cmds)
	default:
		cm = cp.argument(l)
	}
	cm.Candidates = withPrefix(cm.Candidates, cur)
	return cm
}

// walk follows the typed words through commands, flags and arguments.
func (cp Completer) walk(typed []string) line {
	l := line{cmds: cp.App.Commands, flags: append([]cli.Flag{cli.HelpFlag, cli.VersionFlag}, cp.App.Flags...)}
	for i := 0; i < len(typed); i++ {
		w := typed[i]
		switch {
		case w == "--":
			l.args = append(l.args, typed[i+1:]...)
			return l
		case isFlag(w):
			name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			f := findFlag(l.flags, name)
			if f != nil && takesValue([]cli.Flag{f})[name] && !hasValue && i+1 < len(typed) {
				i++
				value = typed[i]
			}
			if name == "config" {
				l.config = value
			}
		case (l.cmd == nil || len(l.cmd.Subcommands) > 0) && findCommand(l.cmds, w) != nil:
			l.cmd = findCommand(l.cmds, w)
			l.cmds, l.flags = l.cmd.Subcommands, append([]cli.Flag{cli.HelpFlag}, l.cmd.Flags...)
		default:
			l.args = append(l.args, w)
		}
	}
	return l
}

// argument completes the next positional argument of l.cmd from its
// ArgsUsage: the words it allows ("bash|zsh|fish"), else by its
// placeholder ("BUNDLE|-", "VIP...|--all": BUNDLE, VIP).
func (cp Completer) argument(l line) Completion {
	alts := strings.Split(argSpec(l.cmd.ArgsUsage, len(l.args)), "|")
	if len(alts) > 1 && isWords(alts) {
		var cm Completion
		for _, a := range alts {
			cm.Candidates = append(cm.Candidates, Candidate{Word: a})
		}
		return cm
	}
	return cp.byPlaceholder(strings.TrimSuffix(alts[0], "..."), l)
}

// argSpec is the part of argsUsage ("DIR HOSTNAME OUT", "VIP...|--all",
// "[COMMAND [SUBCOMMAND]]") for argument n; a last part ending in "..."
// repeats.
func argSpec(argsUsage string, n int) string {
	var parts []string
	for _, p := range strings.Fields(argsUsage) {
		parts = append(parts, strings.Trim(p, "[]"))
	}
	switch {
	case n < len(parts):
		return parts[n]
	case len(parts) > 0 && strings.HasSuffix(strings.Split(parts[len(parts)-1], "|")[0], "..."):
		return parts[len(parts)-1]
	}
	return ""
}

var lowerWord = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

func isWords(alts []string) bool {
	for _, a := range alts {
		if !lowerWord.MatchString(a) {
			return false
		}
	}
	return true
}

// byPlaceholder completes a value named by its placeholder.
func (cp Completer) byPlaceholder(ph string, l line) Completion {
	switch ph {
	case "FILE":
		return Completion{Files: "files"}
	case "DIR", "OUT":
		return Completion{Files: "dirs"}
	case "BUNDLE", "OLD", "NEW":
		return Completion{Files: "files:" + BundleExt}
	case "COMMAND":
		return Completion{Candidates: commandCandidates(cp.App.Commands)}
	case "SUBCOMMAND":
		if len(l.args) > 0 {
			if c := findCommand(cp.App.Commands, l.args[0]); c != nil {
				return Completion{Candidates: commandCandidates(c.Subcommands)}
			}
		}
	case "VIP":
		return cp.vips(l.config)
	}
	return Completion{}
}

func (cp Completer) vips(config string) Completion {
	var cm Completion
	if cp.VIPs == nil {
		return cm
	}
	names, err := cp.VIPs(config)
	if err != nil {
		return cm
	}
	for _, n := range names {
		cm.Candidates = append(cm.Candidates, Candidate{Word: n, Description: "VIP"})
	}
	return cm
}

// placeholder is the `WORD` of a flag's usage, "" when none.
func placeholder(f cli.Flag) string {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		ph, _ := unquote(d.GetUsage())
		return ph
	}
	return ""
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func flagCandidates(flags []cli.Flag) []Candidate {
	var cs []Candidate
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		usage := ""
		if d, ok := f.(cli.DocGenerationFlag); ok {
			usage = strings.ReplaceAll(d.GetUsage(), "`", "")
		}
		for _, n := range f.Names() {
			cs = append(cs, Candidate{Word: dashed(n), Description: usage})
		}
	}
	return cs
}

func commandCandidates(cmds []*cli.Command) []Candidate {
	var cs []Candidate
	for _, c := range cmds {
		if !c.Hidden {
			cs = append(cs, Candidate{Word: c.Name, Description: c.Usage})
		}
	}
	return cs
}

func withPrefix(cs []Candidate, prefix string) []Candidate {
	var out []Candidate
	for _, c := range cs {
		if strings.HasPrefix(c.Word, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 100 {
		s = string(r[:99]) + "…"
	}
	return s
}
