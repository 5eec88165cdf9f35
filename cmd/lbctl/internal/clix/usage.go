package clix

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// UsageError is a command line lbctl cannot run: an unknown command or
// flag, a missing or bad value, the wrong number of arguments. It exits 2
// with one line on standard error.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitCode is 2, the exit status of every usage error.
func (e *UsageError) ExitCode() int { return 2 }

// Usagef is a UsageError with a formatted message.
func Usagef(format string, a ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, a...)}
}

// Exit statuses of lbctl, for every command.
const (
	ExitOK      = 0 // done; a check found nothing wrong
	ExitFailure = 1 // the operation failed, or found a problem (invalid bundle, drift, errors in the tree)
	ExitUsage   = 2 // the command line is wrong: nothing was done
)

// Main runs app with args (args[0] the program name) after Normalize and
// returns the exit status: 0, 1 when the command failed, 2 for a usage
// error. Errors go to app.ErrWriter as "lbctl: message", once.
func Main(app *cli.App, args []string) int {
	err := app.Run(Normalize(app, args))
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(app.ErrWriter, app.Name+": "+strings.TrimPrefix(msg, app.Name+": "))
	}
	return code
}

// Install makes every command of app follow lbctl's conventions: usage
// errors (unknown flags, missing values, unknown commands and
// subcommands) become a UsageError with a suggestion, and no command gets
// urfave/cli's "help, h" subcommand (`lbctl help COMMAND` is the help).
func Install(app *cli.App) {
	app.HideHelpCommand = true
	// urfave/cli adds --help to the app only when it has no command named
	// help, and lbctl has its own (lbctl help [COMMAND]).
	if !slices.ContainsFunc(app.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "help") }) {
		app.Flags = append(app.Flags, cli.HelpFlag)
	}
	app.OnUsageError = onUsageError
	app.Action = groupAction
	walk(app.Commands, func(c *cli.Command) {
		c.HideHelpCommand = true
		for _, f := range c.Flags {
			// "(default: false)" says nothing.
			if b, ok := f.(*cli.BoolFlag); ok {
				b.DisableDefaultText = true
			}
		}
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = groupAction
		}
	})
}

// walk calls fn for every command and subcommand.
func walk(cmds []*cli.Command, fn func(*cli.Command)) {
	for _, c := range cmds {
		fn(c)
		walk(c.Subcommands, fn)
	}
}

// groupAction is the action of the app and of a command group: without
// arguments the help, else an unknown (sub)command.
func groupAction(c *cli.Context) error {
	if !c.Args().Present() {
		if c.Command == nil || c.Command.Name == "" || c.Command.HelpName == c.App.Name {
			return cli.ShowAppHelp(c)
		}
		return cli.ShowSubcommandHelp(c)
	}
	return unknownCommand(c.App.Name, c.Command, c.App.Commands, c.Args().First())
}

// unknownCommand is the usage error of name, not a subcommand of parent
// (nil or the root: a command of the app).
func unknownCommand(app string, parent *cli.Command, top []*cli.Command, name string) error {
	cmds, path := top, app
	if parent != nil && !isRoot(parent, app) {
		cmds, path = parent.Subcommands, commandPath(app, parent)
		if len(cmds) == 0 {
			return Usagef("%sno subcommand %q: it has none (see %s --help)", prefix(app, path), name, path)
		}
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if s := Suggest(name, commandNames(cmds)); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return &UsageError{Msg: prefix(app, path) + msg + " (see " + path + " --help)"}
}

func isRoot(c *cli.Command, app string) bool { return c.HelpName == app || c.Name == app }

// commandPath is "lbctl render node" for a command.
func commandPath(app string, c *cli.Command) string {
	if c.HelpName != "" {
		return c.HelpName
	}
	return app + " " + c.Name
}

// commandNames are the visible names of cmds.
func commandNames(cmds []*cli.Command) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	return names
}

var (
	reUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	reNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
	reBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for flag -+([^:]+): (.*)$`)
)

// onUsageError turns urfave/cli's flag parsing errors into one line.
func onUsageError(c *cli.Context, err error, _ bool) error {
	path := c.App.Name
	if c.Command != nil && !isRoot(c.Command, c.App.Name) {
		path = commandPath(c.App.Name, c.Command)
	}
	return &UsageError{Msg: prefix(c.App.Name, path) + flagError(err.Error(), c.Command) + " (see " + path + " --help)"}
}

// prefix is what a message about the command at path starts with: "" for
// the app (Main writes "lbctl: "), "render node: " for "lbctl render node".
func prefix(app, path string) string {
	if p := strings.TrimPrefix(path, app+" "); p != path {
		return p + ": "
	}
	return ""
}

// flagError rewrites a flag parsing error of cmd: the flag as typed and,
// for an unknown one, the flag that was probably meant.
func flagError(msg string, cmd *cli.Command) string {
	if m := reUndefined.FindStringSubmatch(msg); m != nil {
		msg = "unknown flag " + dashed(m[1])
		var names []string
		if cmd != nil {
			names = flagNames(cmd.Flags)
		}
		if s := Suggest(m[1], names); s != "" {
			msg += "; did you mean " + dashed(s) + "?"
		}
		return msg
	}
	if m := reNoValue.FindStringSubmatch(msg); m != nil {
		return "flag " + dashed(m[1]) + " needs a value"
	}
	if m := reBadValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("invalid value %q for %s: %s", m[1], dashed(m[2]), m[3])
	}
	return msg
}

// dashed is a flag name as typed: -n, --json.
func dashed(name string) string {
	if len([]rune(name)) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagNames are every name of flags, with the help flag.
func flagNames(flags []cli.Flag) []string {
	names := []string{"help"}
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	return names
}

// ShowHelp writes the help of the command at path (no path: the app's)
// to app.Writer by running app with --help; an unknown command is a
// UsageError.
func ShowHelp(c *cli.Context, path []string) error {
	if len(path) == 0 {
		return cli.ShowAppHelp(c)
	}
	cmds := c.App.Commands
	var cmd *cli.Command
	for _, name := range path {
		next := findCommand(cmds, name)
		if next == nil {
			return unknownCommand(c.App.Name, cmd, c.App.Commands, name)
		}
		cmd, cmds = next, next.Subcommands
	}
	return c.App.Run(append(append([]string{c.App.Name}, path...), "--help"))
}
