//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/ops"
	"github.com/lbctl/lbctl/nodeapi"
)

func init() {
	register(statusCommand())
}

func statusCommand() *cli.Command {
	return &cli.Command{Name: "status", Category: "node", Usage: "one screen: release, every VIP with unit, PID, health, announced, drained",
		Flags: []cli.Flag{configFlag, jsonFlag}, Action: runStatus}
}

// runStatus works without the network and without the agent (ops.Status).
func runStatus(c *cli.Context) error {
	cfg, store, err := readStore(c)
	if err != nil {
		return err
	}
	st, err := ops.Status(c.Context, cfg, store)
	switch {
	case err != nil:
		return err
	case c.Bool("json"):
		return writeJSON(c.App.Writer, st)
	case store == nil:
		fmt.Fprintln(c.App.Writer, ops.NothingInstalled(cfg))
		return nil
	}
	printStatus(c.App.Writer, st)
	return nil
}

func printStatus(w io.Writer, st *nodeapi.Status) {
	site := ""
	if st.Site != "" {
		site = ", site " + st.Site
	}
	fmt.Fprintf(w, "node %s%s, release %d, agent %s\n", st.Node, site, st.Serial, st.Agent)
	if st.Probe != "" {
		fmt.Fprintf(w, "socket probe: %s\n", st.Probe)
	}
	if h := st.Handoff; h != nil {
		printHandoff(w, h)
	}
	if st.Pending != nil {
		fmt.Fprintf(w, "INTERRUPTED %s of release %d: the next install, rollback or agent start restores release %d\n", st.Pending.Op, st.Pending.To, st.Pending.From)
	}
	if st.Last != nil {
		fmt.Fprintf(w, "last %s: %d -> %d %s at %s\n", st.Last.Op, st.Last.From, st.Last.To, st.Last.Result, st.Last.Time.Format(time.RFC3339))
	}
	printVIPs(w, st.VIPs)
	for _, e := range st.Servers {
		fmt.Fprintf(w, "server %s: %s in %s since %s (lbctl server enable %s)\n", e.Server, e.State, e.Where(), e.Since.Format(time.RFC3339), e.Server)
	}
}

func printHandoff(w io.Writer, h *nodeapi.HandoffStatus) {
	fmt.Fprintf(w, "flow handoff: %s", h.State)
	if len(h.Peers) > 0 {
		fmt.Fprintf(w, ", peers %s", strings.Join(h.Peers, " "))
	}
	if h.Pins != "" {
		fmt.Fprintf(w, ", %s", h.Pins)
	}
	fmt.Fprintf(w, "\n  forwarded %d, delivered %d, dropped %d (not ours), refused %d (not VIP traffic), refused by the filter %d (not from a peer), errors %d\n",
		h.Forwarded, h.Delivered, h.Dropped, h.Refused, h.FilterRefused, h.ForwardErrors+h.NoPeer)
}

// printVIPs prints the VIP table, then every reason a VIP is not healthy.
func printVIPs(w io.Writer, vips []nodeapi.VIPStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIP\tUNIT\tPID\tHEALTHY\tANNOUNCED\tDRAINED\tADDRESSES")
	for _, v := range vips {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.Name, v.Unit, v.MainPID, yes(v.Healthy), yes(v.Announced), yes(v.Drained), strings.Join(v.Addresses, " "))
	}
	tw.Flush()
	for _, v := range vips {
		for _, r := range v.Reasons {
			fmt.Fprintf(w, "  %s: %s\n", v.Name, r)
		}
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
