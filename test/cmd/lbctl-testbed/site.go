//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/intent"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/test/testbed"
)

func upCommand() *cli.Command {
	return &cli.Command{
		Name:      "up",
		Usage:     "bring the sandbox up for an intents tree (or a resolved model with --model)",
		ArgsUsage: "[DIR]",
		Flags: []cli.Flag{dirFlag,
			&cli.StringFlag{Name: "zone", Usage: "resolve names from this zone `FILE` instead of the site's"},
			&cli.StringFlag{Name: "dns", Usage: "resolve names through this DNS server `ADDR` instead of the site's"},
			&cli.StringFlag{Name: "model", Usage: "resolved model JSON `FILE` instead of an intents tree"},
			&cli.BoolFlag{Name: "plain", Usage: "LB nodes as plain network namespaces instead of systemd as PID 1 in their own namespaces"}},
		Action: runUp,
	}
}

// siteModel reads the model named by --model or resolves the intents tree
// given as the argument, printing every problem the resolver found.
func siteModel(c *cli.Context) (*model.Site, error) {
	if f := c.String("model"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := model.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		return m, nil
	}
	if c.Args().Len() != 1 {
		return nil, cli.Exit("up: want exactly one argument, the intents directory (flags go before it)", 2)
	}
	m, err := intent.Resolve(c.Context, c.Args().First(), intent.Options{Zone: c.String("zone"), DNS: c.String("dns")})
	if err != nil {
		var es intent.Errors
		if !errors.As(err, &es) {
			return nil, err
		}
		for _, e := range es {
			fmt.Fprintln(c.App.ErrWriter, e)
		}
		noun := "problems"
		if len(es) == 1 {
			noun = "problem"
		}
		return nil, cli.Exit(fmt.Sprintf("%s: %d %s found", c.Args().First(), len(es), noun), 1)
	}
	return m, nil
}

func runUp(c *cli.Context) error {
	m, err := siteModel(c)
	if err != nil {
		return err
	}
	// A Ctrl-C during bring-up tears down what was made.
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
	defer stop()
	opts := testbed.Options{Dir: c.String("dir")}
	if !c.Bool("plain") {
		opts.LaunchNode = testbed.SystemdNodes{}.Launch
	}
	s, err := testbed.Up(ctx, m, opts)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "testbed up for site %q: %d LB nodes, %d backends (state in %s)\n", s.Name, len(s.Nodes), len(s.Backends), s.Dir)
	printTopology(w, s)
	return nil
}

func runDown(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if errors.Is(err, testbed.ErrNotUp) {
		fmt.Fprintln(c.App.Writer, "testbed is not up")
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.Down(context.WithoutCancel(c.Context)); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "testbed down: processes stopped, namespaces and", s.Dir, "removed")
	return nil
}

func runStatus(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	st, err := s.Status(c.Context)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printTopology(w, s)
	printStatus(w, st)
	if !st.OK() {
		return cli.Exit("testbed: not healthy", 1)
	}
	return nil
}

// printStatus prints the processes, the BGP sessions, the router's VIP
// routes and the errors of a status.
func printStatus(w io.Writer, st *testbed.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPROCESS\tNAMESPACE\tPID\tSTATE")
	for _, p := range st.Procs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", p.Role, p.NetNS, p.PID, aliveWord(p.Alive))
	}
	for _, n := range st.Nodes {
		if n.PID != 0 {
			fmt.Fprintf(tw, "node %s\t%s\t%d\t%s\n", n.Name, n.NetNS, n.PID, aliveWord(n.Alive))
		}
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nBGP AT\tSESSION\tSTATE\tINFO")
	for _, s := range st.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Speaker, s.Name, s.State, s.Info)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nVIP routes at the router:")
	if len(st.Routes) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, r := range st.Routes {
		fmt.Fprintln(w, " ", r)
	}
	for _, e := range st.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

func aliveWord(ok bool) string {
	if ok {
		return "running"
	}
	return "GONE"
}

// printTopology prints every namespace with its addresses and how to enter it.
func printTopology(w io.Writer, s *testbed.Site) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tROLE\tADDRESSES")
	fmt.Fprintf(tw, "%s\trouter (BIRD, ECMP)\t%s %s | client side %s %s\n", s.Router, testbed.RouterCore4, testbed.RouterCore6, testbed.RouterClient4, testbed.RouterClient6)
	fmt.Fprintf(tw, "%s\troute reflector (BIRD)\t%s %s\n", s.RR, testbed.RRCore4, testbed.RRCore6)
	for _, n := range s.Nodes {
		fmt.Fprintf(tw, "%s\tLB node %s\t%s %s | backend side %s %s\n", n.NetNS, n.Hostname, n.Core4, n.Core6, n.Backend4, n.Backend6)
	}
	fmt.Fprintf(tw, "%s\tclient\t%s %s\n", s.Client, testbed.Client4, testbed.Client6)
	fmt.Fprintf(tw, "%s\tbackend bridge\t-\n", s.BackendBridge)
	for _, b := range s.Backends {
		fmt.Fprintf(tw, "%s\tbackend %s\t%s ports %s\n", b.NetNS, b.Name, b.Address, portList(b.Ports()))
	}
	tw.Flush()
	if s.Nodes[0].Systemd() {
		fmt.Fprintf(w, "enter an LB node: lbctl-testbed exec %s bash   other namespaces: ip netns exec %s bash\n", s.Nodes[0].Name, s.Client)
	} else {
		fmt.Fprintf(w, "enter a namespace: ip netns exec %s bash\n", s.Nodes[0].NetNS)
	}
	fmt.Fprintf(w, "certificates: %s (on a systemd node: /etc/lbctl/certs), CA %s\n", filepath.Join(s.Nodes[0].CertDir, "*.pem"), s.CA)
}

func portList(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}
