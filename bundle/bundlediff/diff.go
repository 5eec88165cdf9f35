// Package bundlediff computes what changes from one resolved site to
// another: services, VIPs and node profiles added, removed and changed,
// the resolved model as text, and every file rendered for every node — the
// review before a bundle ships. It is pure.
package bundlediff

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render"
	"github.com/lbctl/lbctl/internal/udiff"
)

// Change lists the names added, removed and changed of one kind of thing.
type Change struct {
	Added, Removed, Changed []string
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

// FileDiff is the unified diff of one rendered file of one node.
type FileDiff struct {
	Node, Path string
	Unified    string
}

// Diff is the difference of two sites.
type Diff struct {
	Services, VIPs, Nodes Change
	// Resolved is the unified diff of the resolved models.
	Resolved string
	// Files are the rendered files that differ, by node then path.
	Files []FileDiff
}

// Compute compares old and new.
func Compute(old, new *model.Site) (*Diff, error) {
	d := &Diff{
		Services: compare(old.Services, new.Services, func(s model.Service) string { return s.Name }),
		VIPs:     compare(old.VIPs, new.VIPs, func(v model.VIP) string { return v.Name }),
		Nodes:    compare(old.Nodes, new.Nodes, func(n model.Node) string { return n.Hostname }),
	}
	a, err := model.Encode(old)
	if err != nil {
		return nil, err
	}
	b, err := model.Encode(new)
	if err != nil {
		return nil, err
	}
	d.Resolved = udiff.Unified("old/resolved.json", "new/resolved.json", string(a), string(b), 3)
	hosts := map[string]bool{}
	for _, n := range slices.Concat(old.Nodes, new.Nodes) {
		hosts[n.Hostname] = true
	}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	slices.Sort(names)
	for _, h := range names {
		of, err := files(old, h)
		if err != nil {
			return nil, fmt.Errorf("old bundle: %w", err)
		}
		nf, err := files(new, h)
		if err != nil {
			return nil, fmt.Errorf("new bundle: %w", err)
		}
		paths := map[string]bool{}
		for p := range of {
			paths[p] = true
		}
		for p := range nf {
			paths[p] = true
		}
		sorted := make([]string, 0, len(paths))
		for p := range paths {
			sorted = append(sorted, p)
		}
		slices.Sort(sorted)
		for _, p := range sorted {
			aName, bName := "a/"+h+"/"+p, "b/"+h+"/"+p
			if _, ok := of[p]; !ok {
				aName = "/dev/null"
			}
			if _, ok := nf[p]; !ok {
				bName = "/dev/null"
			}
			if u := udiff.Unified(aName, bName, of[p], nf[p], 3); u != "" {
				d.Files = append(d.Files, FileDiff{Node: h, Path: p, Unified: u})
			}
		}
	}
	return d, nil
}

func files(site *model.Site, host string) (map[string]string, error) {
	out := map[string]string{}
	n := site.Node(host)
	if n == nil {
		return out, nil
	}
	fs, err := render.Node(site, n, render.Options{})
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		out[f.Path] = string(f.Data)
	}
	return out, nil
}

func compare[T any](old, new []T, name func(T) string) Change {
	var c Change
	om := map[string]T{}
	for _, x := range old {
		om[name(x)] = x
	}
	nm := map[string]bool{}
	for _, x := range new {
		n := name(x)
		nm[n] = true
		o, ok := om[n]
		switch {
		case !ok:
			c.Added = append(c.Added, n)
		case !equalJSON(o, x):
			c.Changed = append(c.Changed, n)
		}
	}
	for _, x := range old {
		if !nm[name(x)] {
			c.Removed = append(c.Removed, name(x))
		}
	}
	slices.Sort(c.Added)
	slices.Sort(c.Removed)
	slices.Sort(c.Changed)
	return c
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return reflect.DeepEqual(x, y)
}

// WriteSummary prints one line per kind and the changed files per node.
func (d *Diff) WriteSummary(w io.Writer) {
	line := func(kind string, c Change) {
		if c.Empty() {
			fmt.Fprintf(w, "%-9s unchanged\n", kind+":")
			return
		}
		var parts []string
		for _, p := range []struct {
			sign  string
			names []string
		}{{"+", c.Added}, {"-", c.Removed}, {"~", c.Changed}} {
			for _, n := range p.names {
				parts = append(parts, p.sign+n)
			}
		}
		fmt.Fprintf(w, "%-9s %s\n", kind+":", strings.Join(parts, " "))
	}
	line("services", d.Services)
	line("vips", d.VIPs)
	line("nodes", d.Nodes)
	if len(d.Files) == 0 {
		fmt.Fprintln(w, "files:    unchanged on every node")
		return
	}
	byNode := map[string][]string{}
	var order []string
	for _, f := range d.Files {
		if _, ok := byNode[f.Node]; !ok {
			order = append(order, f.Node)
		}
		byNode[f.Node] = append(byNode[f.Node], f.Path)
	}
	for _, n := range order {
		fmt.Fprintf(w, "files %s: %s\n", n, strings.Join(byNode[n], " "))
	}
}

// WriteUnified prints the resolved model's diff and every file diff.
func (d *Diff) WriteUnified(w io.Writer) {
	io.WriteString(w, d.Resolved)
	for _, f := range d.Files {
		io.WriteString(w, f.Unified)
	}
}
