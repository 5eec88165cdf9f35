// Package bundlediff computes what changes from one resolved site to
// another: services, VIPs and node profiles added, removed and changed,
// the resolved model as text, and every file rendered for every node — the
// review before a bundle ships — and writes it for people (a summary with
// counts, --stat, unified diffs, optionally coloured) and for programs
// (Report, a stable JSON document). It is pure: whether a terminal wants
// colour or a pager is the caller's decision.
package bundlediff

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render"
	"github.com/lbctl/lbctl/internal/udiff"
)

// Change lists the names added, removed and changed of one kind of thing,
// each sorted.
type Change struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

// What a rendered file's change is.
const (
	FileAdded   = "added"
	FileRemoved = "removed"
	FileChanged = "changed"
)

// FileDiff is one change of one rendered file, identical on every node it
// names: a file that changes the same way on both LB nodes is one FileDiff.
type FileDiff struct {
	// Path is the file's path in a node's rendered tree
	// (vips/192.0.2.11/haproxy.cfg).
	Path string `json:"path"`
	// Nodes are the nodes whose file changes this way, sorted.
	Nodes []string `json:"nodes"`
	// VIP is the VIP the file belongs to, if any.
	VIP string `json:"vip,omitempty"`
	// Status is FileAdded, FileRemoved or FileChanged.
	Status string `json:"status"`
	// LinesAdded and LinesRemoved count the diff's + and - lines.
	LinesAdded   int `json:"lines_added"`
	LinesRemoved int `json:"lines_removed"`
	// Unified is the unified diff, a/PATH against b/PATH.
	Unified string `json:"unified,omitempty"`
}

// Diff is the difference of two sites.
type Diff struct {
	// VIPs changed include every VIP one of whose files changed on any
	// node, not only those whose resolved model changed.
	// OldSite and NewSite are the sites' names; they differ when the two
	// bundles belong to different sites (SiteChanged), which a review
	// must not miss: nodes of one site refuse the other's bundles.
	OldSite, NewSite      string
	Services, VIPs, Nodes Change
	// Resolved is the unified diff of the resolved models.
	Resolved string
	// Files are the rendered files that differ, by path, then nodes.
	Files []FileDiff
}

// Changed reports whether anything differs.
func (d *Diff) Changed() bool {
	return d.SiteChanged() || d.Resolved != "" || len(d.Files) > 0 || !d.Services.Empty() || !d.VIPs.Empty() || !d.Nodes.Empty()
}

// Compute compares old and new.
func Compute(old, new *model.Site) (*Diff, error) {
	d := &Diff{
		OldSite:  old.Name,
		NewSite:  new.Name,
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
	if d.Files, err = fileDiffs(old, new); err != nil {
		return nil, err
	}
	d.VIPs.Changed = vipsChangedByFiles(d.VIPs, d.Files)
	return d, nil
}

// fileDiffs diffs every rendered file of every node of either site; the
// same change on several nodes is computed and listed once.
func fileDiffs(old, new *model.Site) ([]FileDiff, error) {
	var hosts []string
	for _, n := range slices.Concat(old.Nodes, new.Nodes) {
		hosts = append(hosts, n.Hostname)
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	var out []FileDiff
	seen := map[[sha256.Size]byte]int{} // change -> index in out
	for _, h := range hosts {
		of, err := files(old, h)
		if err != nil {
			return nil, fmt.Errorf("old bundle: %w", err)
		}
		nf, err := files(new, h)
		if err != nil {
			return nil, fmt.Errorf("new bundle: %w", err)
		}
		for _, p := range unionKeys(of, nf) {
			o, inOld := of[p]
			n, inNew := nf[p]
			if inOld && inNew && o == n {
				continue
			}
			key := changeKey(p, o, n, inOld, inNew)
			if i, ok := seen[key]; ok {
				out[i].Nodes = append(out[i].Nodes, h)
				continue
			}
			seen[key] = len(out)
			out = append(out, newFileDiff(p, h, o, n, inOld, inNew))
		}
	}
	slices.SortStableFunc(out, func(a, b FileDiff) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// changeKey identifies a change of the file p: its path, both contents and
// whether the file exists on each side.
func changeKey(p, o, n string, inOld, inNew bool) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%q %t %t %d\n", p, inOld, inNew, len(o))
	h.Write([]byte(o))
	h.Write([]byte(n))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func newFileDiff(p, host, o, n string, inOld, inNew bool) FileDiff {
	aName, bName, status := "a/"+p, "b/"+p, FileChanged
	if !inOld {
		aName, status = "/dev/null", FileAdded
	}
	if !inNew {
		bName, status = "/dev/null", FileRemoved
	}
	fd := FileDiff{Path: p, Nodes: []string{host}, VIP: vipOf(p), Status: status, Unified: udiff.Unified(aName, bName, o, n, 3)}
	fd.LinesAdded, fd.LinesRemoved = countLines(fd.Unified)
	return fd
}

// countLines counts the + and - lines of a unified diff (not its headers).
func countLines(u string) (added, removed int) {
	for line := range strings.Lines(u) {
		switch {
		case strings.HasPrefix(line, "+++ "), strings.HasPrefix(line, "--- "):
		case strings.HasPrefix(line, "+"):
			added++
		case strings.HasPrefix(line, "-"):
			removed++
		}
	}
	return added, removed
}

// vipOf is the VIP a rendered file belongs to (render.VIPDir/<vip>/...).
func vipOf(p string) string {
	rest, ok := strings.CutPrefix(p, render.VIPDir+"/")
	if !ok {
		return ""
	}
	vip, _, found := strings.Cut(rest, "/")
	if !found {
		return ""
	}
	return vip
}

// vipsChangedByFiles adds to the changed VIPs every VIP with a changed
// file that is neither added nor removed: a VIP is changed when anything
// it runs changes, whether or not its own part of the model did.
func vipsChangedByFiles(c Change, files []FileDiff) []string {
	changed := slices.Clone(c.Changed)
	whole := map[string]bool{}
	for _, v := range slices.Concat(c.Added, c.Removed) {
		whole[v] = true
	}
	for _, f := range files {
		if f.VIP != "" && !whole[f.VIP] {
			changed = append(changed, f.VIP)
		}
	}
	slices.Sort(changed)
	return slices.Compact(changed)
}

func unionKeys(a, b map[string]string) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
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
	c := Change{Added: []string{}, Removed: []string{}, Changed: []string{}}
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

// SiteChanged reports whether the two bundles belong to different sites.
func (d *Diff) SiteChanged() bool { return d.OldSite != d.NewSite }
