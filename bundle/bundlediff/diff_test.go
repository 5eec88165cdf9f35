package bundlediff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/intent"
	"github.com/lbctl/lbctl/bundle/model"
)

// campus resolves examples/campus; each call returns a new site.
func campus(t *testing.T) *model.Site {
	t.Helper()
	site, err := intent.Resolve(context.Background(), "../../examples/campus", intent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return site
}

func service(t *testing.T, site *model.Site, name string) *model.Service {
	for i := range site.Services {
		if site.Services[i].Name == name {
			return &site.Services[i]
		}
	}
	t.Fatalf("no service %s", name)
	return nil
}

// TestVIPChangedByItsFiles: a service setting that changes only its VIP's
// haproxy.cfg (not the VIP's part of the model) makes the VIP changed, and
// the change, identical on both nodes, is listed and printed once.
func TestVIPChangedByItsFiles(t *testing.T) {
	old, new := campus(t), campus(t)
	wiki := service(t, new, "web/wiki")
	if wiki.Backend.Balance == "leastconn" {
		t.Fatal("campus wiki balances leastconn already")
	}
	wiki.Backend.Balance = "leastconn"
	d, err := Compute(old, new)
	if err != nil {
		t.Fatal(err)
	}
	vip := wiki.VIP
	if !slices.Equal(d.Services.Changed, []string{"web/wiki"}) || !slices.Equal(d.VIPs.Changed, []string{vip}) {
		t.Fatalf("services %+v, vips %+v; want web/wiki and %s changed", d.Services, d.VIPs, vip)
	}
	if len(d.Files) != 1 || d.Files[0].Path != "vips/"+vip+"/haproxy.cfg" || !slices.Equal(d.Files[0].Nodes, []string{"lb1", "lb2"}) ||
		d.Files[0].VIP != vip || d.Files[0].Status != FileChanged || d.Files[0].LinesAdded != 1 || d.Files[0].LinesRemoved != 1 {
		t.Fatalf("files: %+v", d.Files)
	}
	var sum, uni bytes.Buffer
	d.WriteSummary(&sum)
	for _, want := range []string{"services: 1 changed\n          ~web/wiki\n", "vips:     1 changed\n          ~" + vip + "\n",
		"nodes:    unchanged\n", "files:    1 changed on lb1, lb2\n          ~vips/" + vip + "/haproxy.cfg\n"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	d.WriteUnified(&uni)
	if n := strings.Count(uni.String(), "+++ b/vips/"+vip+"/haproxy.cfg\n"); n != 1 {
		t.Errorf("the identical diff of both nodes is printed %d times:\n%s", n, uni.String())
	}
	if !strings.Contains(uni.String(), "diff lb1 lb2: vips/"+vip+"/haproxy.cfg\n") || !strings.Contains(uni.String(), "+    balance leastconn\n") {
		t.Errorf("unified diff:\n%s", uni.String())
	}
}

// TestNodeOnlyChange: a change of one node's profile is that node's alone.
func TestNodeOnlyChange(t *testing.T) {
	old, new := campus(t), campus(t)
	n := new.Node("lb1")
	n.BFD = !n.BFD
	d, err := Compute(old, new)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Nodes.Changed, []string{"lb1"}) || len(d.VIPs.Changed) != 0 {
		t.Fatalf("nodes %+v vips %+v", d.Nodes, d.VIPs)
	}
	for _, f := range d.Files {
		if !slices.Equal(f.Nodes, []string{"lb1"}) {
			t.Errorf("%s changes on %v, want lb1 only", f.Path, f.Nodes)
		}
	}
	if len(d.Files) == 0 {
		t.Fatal("no file changes")
	}
}

// TestUnchanged: the same site twice is no change.
func TestUnchanged(t *testing.T) {
	d, err := Compute(campus(t), campus(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed() || len(d.Files) != 0 || d.Resolved != "" {
		t.Fatalf("changed: %+v", d)
	}
	var sum bytes.Buffer
	d.WriteSummary(&sum)
	if want := "services: unchanged\nvips:     unchanged\nnodes:    unchanged\nfiles:    unchanged\n"; sum.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", sum.String(), want)
	}
}

// TestSummaryAtScale: with 2,000 VIPs changed the summary stays a few
// short lines: counts, then the first names, wrapped, and how many more.
func TestSummaryAtScale(t *testing.T) {
	d := &Diff{Services: Change{Added: []string{"web/new"}}}
	for i := range 2000 {
		d.VIPs.Changed = append(d.VIPs.Changed, fmt.Sprintf("10.%d.%d.1", i/250, i%250))
		d.Files = append(d.Files, FileDiff{Path: fmt.Sprintf("vips/10.%d.%d.1/haproxy.cfg", i/250, i%250), Nodes: []string{"lb1", "lb2"}, Status: FileChanged})
	}
	var sum bytes.Buffer
	Text{}.Summary(&sum, d)
	lines := strings.Split(strings.TrimSuffix(sum.String(), "\n"), "\n")
	if len(lines) > 16 {
		t.Errorf("summary has %d lines:\n%s", len(lines), sum.String())
	}
	for _, l := range lines {
		if len(l) > 100 {
			t.Errorf("line of %d characters: %s", len(l), l)
		}
	}
	for _, want := range []string{"services: 1 added\n          +web/new\n", "vips:     2,000 changed\n          ~10.0.0.1 ~10.0.1.1",
		"... and 1,980 more (--json lists them all)", "files:    2,000 changed on lb1, lb2\n"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}

// TestReportJSON: the report parses back into the documented structure.
func TestReportJSON(t *testing.T) {
	old, new := campus(t), campus(t)
	service(t, new, "web/wiki").Backend.Balance = "leastconn"
	// Remove a VIP and its services.
	gone := service(t, new, "legacy/erp").VIP
	new.Services = slices.DeleteFunc(new.Services, func(s model.Service) bool { return s.VIP == gone })
	new.VIPs = slices.DeleteFunc(new.VIPs, func(v model.VIP) bool { return v.Name == gone })
	d, err := Compute(old, new)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(d.Report(true))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Format   int  `json:"format"`
		Changed  bool `json:"changed"`
		Counts   map[string]map[string]int
		VIPs     map[string][]string `json:"vips"`
		Files    []map[string]any    `json:"files"`
		Resolved string              `json:"resolved"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Format != ReportFormat || !r.Changed || r.Counts["services"]["changed"] != 1 || r.Counts["services"]["removed"] < 1 ||
		r.Counts["vips"]["removed"] != 1 || r.Counts["files"]["removed"] == 0 || r.Resolved == "" || !slices.Equal(r.VIPs["removed"], []string{gone}) {
		t.Fatalf("report: %s", b)
	}
	if r.VIPs["added"] == nil || r.VIPs["removed"] == nil {
		t.Errorf("empty name lists are not [] in %s", b)
	}
	found := false
	for _, f := range r.Files {
		if f["path"] == "vips/"+service(t, new, "web/wiki").VIP+"/haproxy.cfg" {
			found = true
			if f["status"] != "changed" || f["unified"] == "" || fmt.Sprint(f["nodes"]) != "[lb1 lb2]" {
				t.Errorf("file entry %v", f)
			}
		}
	}
	if !found {
		t.Errorf("no entry of the wiki's haproxy.cfg in %s", b)
	}
	// Without diffs: the same names and counts, no unified text.
	b, _ = json.Marshal(d.Report(false))
	if bytes.Contains(b, []byte(`"unified"`)) || bytes.Contains(b, []byte(`"resolved"`)) {
		t.Errorf("report without diffs holds diffs: %s", b)
	}
}

// TestStatAndColor: --stat counts lines per file; colour only when asked.
func TestStatAndColor(t *testing.T) {
	old, new := campus(t), campus(t)
	service(t, new, "web/wiki").Backend.Balance = "leastconn"
	d, err := Compute(old, new)
	if err != nil {
		t.Fatal(err)
	}
	var st, plain, col bytes.Buffer
	Text{}.Stat(&st, d)
	if !strings.Contains(st.String(), "haproxy.cfg (lb1, lb2) |     2 +-\n") || !strings.Contains(st.String(), " 2 files changed, ") {
		t.Errorf("stat:\n%s", st.String())
	}
	Text{}.Unified(&plain, d)
	Text{Color: true}.Unified(&col, d)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("plain text holds escapes")
	}
	if !strings.Contains(col.String(), "\x1b[32m+    balance leastconn\x1b[m\n") || !strings.Contains(col.String(), "\x1b[31m-") {
		t.Errorf("coloured diff:\n%q", col.String())
	}
}

// TestSiteChanged: two sites with the same node names differ loudly: the
// summary's first line, Changed, and the report name both sites.
func TestSiteChanged(t *testing.T) {
	old, new := campus(t), campus(t)
	new.Name = "campus-b"
	d, err := Compute(old, new)
	if err != nil {
		t.Fatal(err)
	}
	if !d.SiteChanged() || !d.Changed() {
		t.Fatalf("SiteChanged %v Changed %v", d.SiteChanged(), d.Changed())
	}
	var b strings.Builder
	d.WriteSummary(&b)
	if !strings.HasPrefix(b.String(), `SITE CHANGED: "campus" -> "campus-b": these bundles belong to different sites`) {
		t.Errorf("summary:\n%s", b.String())
	}
	if r := d.Report(false); r.OldSite != "campus" || r.NewSite != "campus-b" || !r.Changed {
		t.Errorf("report %+v", r)
	}
	same, _ := Compute(old, campus(t))
	b.Reset()
	same.WriteSummary(&b)
	if same.SiteChanged() || strings.Contains(b.String(), "SITE") {
		t.Errorf("one site: %s", b.String())
	}
}
