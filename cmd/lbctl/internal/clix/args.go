package clix

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Normalize returns args (args[0] is the program) with the flags of the
// command they name moved before its positional arguments, so that
// "lbctl check DIR --json" parses like "lbctl check --json DIR": urfave/cli
// (like Go's flag package) stops at the first argument. A flag's value
// moves with it; "--" ends the flags, and what follows it stays positional.
// When a command has arguments, "--" is put between the flags and them, so
// an argument such as "-" (standard input) is never read as a flag.
// Commands that skip flag parsing are left alone.
func Normalize(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	cmds := app.Commands
	var cmd *cli.Command
	for {
		// Leading flags of a command group (or of the app) stay where they are.
		i := 0
		for i < len(rest) && isFlag(rest[i]) {
			i++
		}
		if i == len(rest) || rest[i] == "--" {
			return append(out, rest...)
		}
		next := findCommand(cmds, rest[i])
		if next == nil || len(next.Subcommands) == 0 {
			if next != nil {
				cmd = next
				out = append(out, rest[:i+1]...)
				rest = rest[i+1:]
			}
			break
		}
		out = append(out, rest[:i+1]...)
		rest = rest[i+1:]
		cmd, cmds = next, next.Subcommands
	}
	if cmd == nil || cmd.SkipFlagParsing || len(cmd.Subcommands) > 0 {
		return append(out, rest...)
	}
	return append(out, reorder(cmd.Flags, rest)...)
}

// reorder puts the flags of rest first, then "--" and the arguments.
func reorder(flags []cli.Flag, rest []string) []string {
	values := takesValue(flags)
	var fl, pos []string
	dangling := false
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			pos = append(pos, rest[i+1:]...)
			i = len(rest)
		case isFlag(a):
			fl = append(fl, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && values[name] {
				if i+1 == len(rest) {
					dangling = true
					break
				}
				i++
				fl = append(fl, rest[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	// A last flag without its value must stay last, for the parser to
	// say so (before "--" it would take "--" as its value); with --help
	// the arguments do not matter (urfave/cli would take the first for a
	// help topic).
	if len(pos) == 0 || dangling || slices.Contains(fl, "--help") || slices.Contains(fl, "-h") {
		return fl
	}
	return append(append(fl, "--"), pos...)
}

// takesValue maps every name of flags to whether it takes a value.
func takesValue(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		tv := false
		if d, ok := f.(cli.DocGenerationFlag); ok {
			tv = d.TakesValue()
		}
		for _, n := range f.Names() {
			m[n] = tv
		}
	}
	return m
}

func isFlag(a string) bool { return strings.HasPrefix(a, "-") && a != "-" && a != "--" }

// findCommand is the command of cmds named or aliased name.
func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
