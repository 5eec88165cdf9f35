package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/intent"
	"github.com/lbctl/lbctl/bundle/model"
)

func init() {
	register(
		&cli.Command{
			Name:      "check",
			Usage:     "check an intents tree and report every problem",
			ArgsUsage: "DIR",
			Description: "Loads DIR (site.yaml, defaults, services, node profiles), resolves names through the zone file or DNS\n" +
				"server of site.yaml (or --zone/--dns) and the inventory, and applies every rule of docs/intents.md. Every\n" +
				"problem is reported at once as FILE:LINE:COLUMN: MESSAGE, with the closest name for a misspelt one.",
			Flags:  append(resolveFlags(), &cli.BoolFlag{Name: "json", Usage: "print the result as JSON: counts, or every problem with its file, line and column"}),
			Action: runCheck,
		},
		&cli.Command{
			Name:      "resolve",
			Usage:     "resolve an intents tree and print the resolved model",
			ArgsUsage: "DIR",
			Flags: append(resolveFlags(), &cli.BoolFlag{
				Name:  "json",
				Usage: "print the resolved model as canonical JSON",
			}),
			Action: runResolve,
		},
		&cli.Command{
			Name:      "schema",
			Usage:     "print the JSON Schema of service files (or of defaults, node or site files)",
			ArgsUsage: "[service|defaults|node|site]",
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "(the schema is JSON: accepted like every read command's)"}},
			Action:    runSchema,
		},
	)
}

func resolveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "zone", Usage: "resolve names from this zone `FILE` instead of the site's"},
		&cli.StringFlag{Name: "dns", Usage: "resolve names through this DNS server `ADDR` instead of the site's"},
	}
}

// positional returns the command's positional arguments. Flags that
// followed them ("lbctl resolve DIR --json") were moved before them by
// clix.Normalize, so urfave/cli has parsed them already.
func positional(c *cli.Context) ([]string, error) {
	return c.Args().Slice(), nil
}

// resolveTree loads and resolves the tree named by the command's argument.
func resolveTree(c *cli.Context) (*model.Site, string, error) {
	args, err := positional(c)
	if err != nil {
		return nil, "", err
	}
	if len(args) != 1 {
		return nil, "", cli.Exit(fmt.Sprintf("%s: want exactly one argument, the intents directory", c.Command.Name), 2)
	}
	site, err := intent.Resolve(c.Context, args[0], intent.Options{
		Zone: c.String("zone"),
		DNS:  c.String("dns"),
	})
	return site, args[0], err
}

// resolveOrReport resolves the tree and, on failure, prints every problem
// and returns the exit error.
func resolveOrReport(c *cli.Context) (*model.Site, string, error) {
	site, dir, err := resolveTree(c)
	if err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			return nil, dir, err
		}
		return nil, dir, reportErrors(c.App.ErrWriter, err)
	}
	return site, dir, nil
}

// reportErrors prints every problem, one per line, and returns the exit
// error.
func reportErrors(w io.Writer, err error) error {
	var lines []string
	var es intent.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			lines = append(lines, e.Error())
		}
	} else {
		lines = strings.Split(err.Error(), "\n")
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	noun := "problems"
	if len(lines) == 1 {
		noun = "problem"
	}
	return cli.Exit(fmt.Sprintf("%d %s found", len(lines), noun), 1)
}

func runCheck(c *cli.Context) error {
	if c.Bool("json") {
		return runCheckJSON(c)
	}
	site, dir, err := resolveOrReport(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s: ok: %d services, %d VIPs, %d nodes\n", dir, len(site.Services), len(site.VIPs), len(site.Nodes))
	return nil
}

// checkResult is what `lbctl check --json` prints.
type checkResult struct {
	Dir      string    `json:"dir"`
	OK       bool      `json:"ok"`
	Services int       `json:"services"`
	VIPs     int       `json:"vips"`
	Nodes    int       `json:"nodes"`
	Problems []problem `json:"problems"`
}

// problem is one problem of the tree; file, line and column when known.
type problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

// runCheckJSON is check --json: the result on stdout, exit 1 with the
// number of problems on stderr when there are any.
func runCheckJSON(c *cli.Context) error {
	site, dir, err := resolveTree(c)
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return err
	}
	res := checkResult{Dir: dir, OK: err == nil, Problems: problems(err)}
	if site != nil {
		res.Services, res.VIPs, res.Nodes = len(site.Services), len(site.VIPs), len(site.Nodes)
	}
	if werr := writeJSON(c.App.Writer, res); werr != nil || err == nil {
		return werr
	}
	return cli.Exit(fmt.Sprintf("%d %s found", len(res.Problems), plural(len(res.Problems), "problem")), 1)
}

// problems lists err's problems: every positioned error of the tree, or
// one line per line of another error.
func problems(err error) []problem {
	ps := []problem{}
	var es intent.Errors
	switch {
	case err == nil:
	case errors.As(err, &es):
		for _, e := range es {
			ps = append(ps, problem{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Col, Message: e.Msg})
		}
	default:
		for _, l := range strings.Split(err.Error(), "\n") {
			ps = append(ps, problem{Message: l})
		}
	}
	return ps
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

func runResolve(c *cli.Context) error {
	site, _, err := resolveOrReport(c)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		b, err := model.Encode(site)
		if err != nil {
			return err
		}
		_, err = c.App.Writer.Write(b)
		return err
	}
	printSite(c.App.Writer, site)
	return nil
}

// printSite prints a short human summary: VIPs, then services.
func printSite(w io.Writer, site *model.Site) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VIP\tADDRESSES\tPORTS\tSERVICES\n")
	for _, v := range site.VIPs {
		var ports []string
		for _, p := range v.Ports {
			ports = append(ports, portText(p))
		}
		name := v.Name
		if v.Transparent {
			name += " (transparent)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", name, strings.Join(addrTexts(v.Addresses), " "), strings.Join(ports, " "), len(v.Services))
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "SERVICE\tFQDN\tVIP\tLISTENERS\tBACKEND\n")
	for _, s := range site.Services {
		var ls []string
		for _, l := range s.Listeners {
			ls = append(ls, listenerText(l))
		}
		b := s.Backend.Group
		if b == "" {
			b = "hosts"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s: %d %s\n", s.Name, s.FQDN, s.VIP, strings.Join(ls, " "), b, len(s.Backend.Servers), s.Backend.Software)
	}
	fmt.Fprintf(tw, "\n%d services, %d VIPs, %d nodes\n", len(site.Services), len(site.VIPs), len(site.Nodes))
	tw.Flush()
}

// portText is a VIP port as printSite shows it: 443/http+tls.
func portText(p model.Port) string {
	s := fmt.Sprintf("%d/%s", p.Port, p.Mode)
	if p.TLS {
		s += "+tls"
	}
	return s
}

// listenerText is a listener as printSite shows it: 80->https, 443(tls)->8080.
func listenerText(l model.Listener) string {
	x := fmt.Sprint(l.Port)
	switch {
	case l.Action == model.ActionRedirectHTTPS:
		x += "->https"
	case l.TLS:
		x += "(tls)->" + fmt.Sprint(l.BackendPort)
	case l.BackendPort != l.Port:
		x += "->" + fmt.Sprint(l.BackendPort)
	}
	return x
}

func runSchema(c *cli.Context) error {
	kind := "service"
	if c.NArg() > 0 {
		kind = c.Args().First()
	}
	b, err := intent.Schema(kind)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	_, err = c.App.Writer.Write(b)
	return err
}

// addrTexts is the text of each address.
func addrTexts(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
