// Command gensite writes a campus-like site of N VIPs for the scale
// benchmark: examples/campus plus N-8 generated services (test/scale).
//
//	go run ./test/scale/gensite -vips 150 -o /tmp/site150
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lbctl/lbctl/test/scale"
)

func main() {
	vips := flag.Int("vips", 150, "number of VIPs (at least 8, the campus's)")
	campus := flag.String("campus", "examples/campus", "the campus tree to start from")
	out := flag.String("o", "", "output `DIR` (must not exist)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gensite: -o DIR is required")
		os.Exit(2)
	}
	if _, err := os.Stat(*out); err == nil {
		fmt.Fprintf(os.Stderr, "gensite: %s exists\n", *out)
		os.Exit(1)
	}
	svcs, err := scale.Generate(*campus, *out, *vips)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gensite:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: the campus's %d VIPs and %d generated services\n", *out, scale.CampusVIPs, len(svcs))
}
