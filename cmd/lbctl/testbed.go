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

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/test/testbed"
)

func init() {
	dirFlag := &cli.StringFlag{Name: "dir", Value: testbed.DefaultDir, Usage: "testbed state `DIR`"}
	register(&cli.Command{
		Name:   "testbed",
		Usage:  "the sandbox: an anycast site in network namespaces on this machine (root)",
		Hidden: true,
		Subcommands: []*cli.Command{
			{
				Name:      "up",
				Usage:     "bring the sandbox up for an intents tree (or a resolved model with --model)",
				ArgsUsage: "[DIR]",
				Flags: append(resolveFlags(), dirFlag,
					&cli.StringFlag{Name: "model", Usage: "resolved model JSON `FILE` instead of an intents tree"}),
				Action: runTestbedUp,
			},
			{
				Name:   "down",
				Usage:  "tear the sandbox down",
				Flags:  []cli.Flag{dirFlag},
				Action: runTestbedDown,
			},
			{
				Name:   "status",
				Usage:  "show namespaces, processes, BGP sessions and the router's VIP routes",
				Flags:  []cli.Flag{dirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: runTestbedStatus,
			},
			{
				Name:            "serve-backend",
				Usage:           "run a backend server (started by `testbed up` inside a backend namespace)",
				Hidden:          true,
				SkipFlagParsing: true,
				Action: func(c *cli.Context) error {
					ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
					defer stop()
					return testbed.BackendMain(ctx, c.Args().Slice())
				},
			},
		},
	})
}

func runTestbedUp(c *cli.Context) error {
	var m *model.Site
	if f := c.String("model"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if m, err = model.Decode(b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	} else {
		site, _, err := resolveTree(c)
		if err != nil {
			return reportErrors(c.App.ErrWriter, err)
		}
		m = site
	}
	// A Ctrl-C during bring-up tears down what was made.
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
	defer stop()
	s, err := testbed.Up(ctx, m, testbed.Options{Dir: c.String("dir")})
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "testbed up for site %q: %d LB nodes, %d backends (state in %s)\n", s.Name, len(s.Nodes), len(s.Backends), s.Dir)
	printTopology(w, s)
	return nil
}

func runTestbedDown(c *cli.Context) error {
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

func runTestbedStatus(c *cli.Context) error {
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
	if !st.OK() {
		return cli.Exit("testbed: not healthy", 1)
	}
	return nil
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
	fmt.Fprintf(w, "enter a namespace: ip netns exec %s bash   certificates: %s, CA %s\n",
		s.Nodes[0].NetNS, filepath.Join(s.Nodes[0].CertDir, "*.pem"), s.CA)
}

func portList(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}
