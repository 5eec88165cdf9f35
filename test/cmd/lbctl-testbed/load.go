//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/test/testbed"
)

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:      "load",
		Usage:     "a bounded request loop from the client namespace; counts answers by LB node and backend, and failures",
		ArgsUsage: "URL",
		Flags: []cli.Flag{dirFlag,
			&cli.StringSliceFlag{Name: "host", Usage: "dial `NAME=ADDRESS` for host NAME (Host and SNI keep the name)"},
			&cli.DurationFlag{Name: "duration", Value: 5 * time.Second, Usage: "stop after this long"},
			&cli.IntFlag{Name: "count", Usage: "stop after this many requests"},
			&cli.DurationFlag{Name: "interval", Value: 20 * time.Millisecond, Usage: "between request starts"},
			&cli.BoolFlag{Name: "retry-refused", Usage: "retry once, 100 ms later, a request whose connection was refused or reset before any answer"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: runLoad,
	}
}

func runLoad(c *cli.Context) error {
	s, err := testbed.Load(c.String("dir"))
	if err != nil {
		return err
	}
	if c.Args().Len() != 1 {
		return cli.Exit("load: want one argument, the URL", 2)
	}
	hosts := map[string]netip.Addr{}
	for _, h := range c.StringSlice("host") {
		name, addr, ok := strings.Cut(h, "=")
		a, err := netip.ParseAddr(addr)
		if !ok || err != nil {
			return cli.Exit(fmt.Sprintf("load: --host %q: want NAME=ADDRESS", h), 2)
		}
		hosts[name] = a
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
	defer stop()
	l := testbed.Traffic{URL: c.Args().First(), Hosts: hosts, Duration: c.Duration("duration"), Count: c.Int("count"),
		Interval: c.Duration("interval"), RetryRefused: c.Bool("retry-refused")}
	res, err := l.Run(ctx, s)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printTraffic(c.App.Writer, res)
	if res.Failed > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

func printTraffic(w io.Writer, res *testbed.TrafficResult) {
	fmt.Fprintf(w, "%d requests in %v: %d ok, %d failed, %d retried after a refused connection\n",
		res.Requests, res.Duration.Round(time.Millisecond), res.OK, res.Failed, res.Retried)
	for i, sec := range res.Seconds {
		fmt.Fprintf(w, "  second %d: %s\n", i+1, countList(sec))
	}
	fmt.Fprintf(w, "served through: %s\n", countList(res.ByNode))
	fmt.Fprintf(w, "answered by:    %s\n", countList(res.ByBackend))
	for _, e := range res.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
