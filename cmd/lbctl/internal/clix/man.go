package clix

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// ManItem is one entry of a FILES or ENVIRONMENT section.
type ManItem struct{ Name, Text string }

// ManExample is one entry of EXAMPLES: a command line and what it does.
type ManExample struct{ Command, Text string }

// ManExtra is what a command's page says beyond its definition.
type ManExtra struct {
	Examples []ManExample
	Files    []ManItem
	Env      []ManItem
	// Exit adds to the EXIT STATUS section (what 1 means here).
	Exit string
}

// Manual is what ManPages needs besides the command definitions.
type Manual struct {
	Date, Version string
	// Description is lbctl(1)'s DESCRIPTION, one paragraph per element.
	Description []string
	// Extra is keyed by the command's path ("build", "render node"; ""
	// for lbctl(1) itself).
	Extra map[string]ManExtra
	// FlagFiles and FlagEnv are the FILES and ENVIRONMENT entries of every
	// command with a flag of that name ("config", "trusted").
	FlagFiles, FlagEnv map[string][]ManItem
}

// ManPages returns one page per command and subcommand ("lbctl-render-node.1")
// and lbctl.1, which lists them, keyed by file name. Everything comes from
// the command definitions and m.
func ManPages(app *cli.App, m Manual) map[string]string {
	pages := map[string]string{"lbctl.1": m.appPage(app)}
	var add func(path []string, cmds []*cli.Command)
	add = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			p := append(slices.Clone(path), c.Name)
			pages[app.Name+"-"+strings.Join(p, "-")+".1"] = m.commandPage(app, p, c)
			add(p, c.Subcommands)
		}
	}
	add(nil, app.Commands)
	return pages
}

func (m Manual) header(b *strings.Builder, title string) {
	fmt.Fprintf(b, ".TH %s 1 %q %q \"lbctl manual\"\n.nh\n.ad l\n", strings.ToUpper(title), m.Date, "lbctl "+m.Version)
}

func (m Manual) appPage(app *cli.App) string {
	var b strings.Builder
	m.header(&b, app.Name)
	section(&b, "NAME", roff(app.Name+" - "+app.Usage))
	section(&b, "SYNOPSIS", `\fB`+app.Name+`\fR \fICOMMAND\fR [\fIOPTIONS\fR] [\fIARGUMENTS\fR]`)
	section(&b, "DESCRIPTION", paragraphs(m.Description))
	b.WriteString(".SH COMMANDS\n")
	var see []string
	var list func(prefix string, cmds []*cli.Command)
	list = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			name := strings.TrimSpace(prefix + " " + c.Name)
			fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s (\\fB%s\\fR(1))\n", roff(name), roff(c.Usage), roff(app.Name+"-"+strings.ReplaceAll(name, " ", "-")))
			see = append(see, `\fB`+roff(app.Name+"-"+strings.ReplaceAll(name, " ", "-"))+`\fR(1)`)
			list(name, c.Subcommands)
		}
	}
	list("", app.Commands)
	m.common(&b, "", nil)
	section(&b, "SEE ALSO", strings.Join(see, ", "))
	return b.String()
}

func (m Manual) commandPage(app *cli.App, path []string, c *cli.Command) string {
	var b strings.Builder
	full := app.Name + " " + strings.Join(path, " ")
	m.header(&b, app.Name+"-"+strings.Join(path, "-"))
	section(&b, "NAME", roff(app.Name+"-"+strings.Join(path, "-")+" - "+c.Usage))
	syn := `\fB` + roff(full) + `\fR`
	if len(c.Subcommands) > 0 {
		syn += ` \fISUBCOMMAND\fR`
	}
	if len(c.VisibleFlags()) > 0 {
		syn += ` [\fIOPTIONS\fR]`
	}
	if c.ArgsUsage != "" {
		syn += ` \fI` + roff(c.ArgsUsage) + `\fR`
	}
	section(&b, "SYNOPSIS", syn)
	desc := []string{upperFirst(c.Usage) + "."}
	if c.Description != "" {
		desc = append(desc, strings.Split(c.Description, "\n\n")...)
	}
	section(&b, "DESCRIPTION", paragraphs(desc))
	if len(c.Subcommands) > 0 {
		b.WriteString(".SH SUBCOMMANDS\n")
		for _, s := range c.Subcommands {
			if !s.Hidden {
				fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roff(s.Name), roff(s.Usage))
			}
		}
	}
	options(&b, c.Flags)
	m.common(&b, strings.Join(path, " "), c.Flags)
	section(&b, "SEE ALSO", `\fB`+app.Name+`\fR(1)`)
	return b.String()
}

// common writes FILES, ENVIRONMENT, EXIT STATUS and EXAMPLES of the page of
// the command at path ("" for lbctl(1)).
func (m Manual) common(b *strings.Builder, path string, flags []cli.Flag) {
	extra := m.Extra[path]
	files, env := slices.Clone(extra.Files), slices.Clone(extra.Env)
	for _, f := range flags {
		files = append(files, m.FlagFiles[f.Names()[0]]...)
		env = append(env, m.FlagEnv[f.Names()[0]]...)
		if d, ok := f.(cli.DocGenerationFlag); ok {
			for _, e := range d.GetEnvVars() {
				env = append(env, ManItem{e, "The default of --" + f.Names()[0] + "."})
			}
		}
	}
	items(b, "FILES", dedup(files))
	items(b, "ENVIRONMENT", dedup(env))
	b.WriteString(".SH EXIT STATUS\n.TP\n0\nSuccess.\n.TP\n1\n")
	b.WriteString(roff(cmpOr(extra.Exit, "The command failed; the message on standard error says why.")) + "\n")
	b.WriteString(".TP\n2\nUsage error: an unknown command or flag, a missing or bad value, the wrong arguments. Nothing was done.\n")
	if len(extra.Examples) > 0 {
		b.WriteString(".SH EXAMPLES\n")
		for _, e := range extra.Examples {
			fmt.Fprintf(b, ".PP\n%s\n.PP\n.RS 4\n.nf\n%s\n.fi\n.RE\n", roff(e.Text), roff(e.Command))
		}
	}
}

func options(b *strings.Builder, flags []cli.Flag) {
	var any bool
	for _, f := range flags {
		d, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		if !any {
			b.WriteString(".SH OPTIONS\n")
			any = true
		}
		ph, usage := unquote(d.GetUsage())
		var names []string
		for _, n := range f.Names() {
			s := `\fB` + roff(dashed(n)) + `\fR`
			if d.TakesValue() {
				s += ` \fI` + roff(cmpOr(ph, "VALUE")) + `\fR`
			}
			names = append(names, s)
		}
		text := upperFirst(usage)
		if def := d.GetDefaultText(); def != "" && d.TakesValue() {
			text += " (default: " + strings.Trim(def, `"`) + ")"
		}
		for _, e := range d.GetEnvVars() {
			text += "; $" + e
		}
		fmt.Fprintf(b, ".TP\n%s\n%s\n", strings.Join(names, ", "), roff(text))
	}
}

func section(b *strings.Builder, name, body string) {
	if body != "" {
		fmt.Fprintf(b, ".SH %s\n%s\n", name, body)
	}
}

func items(b *strings.Builder, name string, is []ManItem) {
	if len(is) == 0 {
		return
	}
	fmt.Fprintf(b, ".SH %s\n", name)
	for _, i := range is {
		fmt.Fprintf(b, ".TP\n\\fB%s\\fR\n%s\n", roff(i.Name), roff(i.Text))
	}
}

func paragraphs(ps []string) string {
	var out []string
	for _, p := range ps {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, roff(strings.Join(strings.Fields(p), " ")))
		}
	}
	return strings.Join(out, "\n.PP\n")
}

func dedup(is []ManItem) []ManItem {
	var out []ManItem
	for _, i := range is {
		if !slices.ContainsFunc(out, func(o ManItem) bool { return o.Name == i.Name }) {
			out = append(out, i)
		}
	}
	return out
}

// roff escapes text for a roff line: backslashes, hyphens, and a leading
// dot or quote that would make the line a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	return roffKeep(s)
}

// roffKeep only guards a leading dot or quote (s has its escapes).
func roffKeep(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// unquote is the `PLACEHOLDER` of a usage and the usage without quotes.
func unquote(u string) (string, string) {
	ph := ""
	if i := strings.IndexByte(u, '`'); i >= 0 {
		if j := strings.IndexByte(u[i+1:], '`'); j >= 0 {
			ph = u[i+1 : i+1+j]
		}
	}
	return ph, strings.ReplaceAll(u, "`", "")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
