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
			Flags:     resolveFlags(),
			Action:    runCheck,
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
	site, dir, err := resolveOrReport(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s: ok: %d services, %d VIPs, %d nodes\n", dir, len(site.Services), len(site.VIPs), len(site.Nodes))
	return nil
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
