package bundlediff

// ReportFormat is the version of Report's structure; it changes only when
// a field changes meaning or goes away (new fields may be added).
const ReportFormat = 1

// Report is what lbctl diff --json prints, a stable structure documented
// in docs/operations.md ("Reviewing a bundle").
type Report struct {
	// Format is ReportFormat.
	Format int `json:"format"`
	// Changed is true when anything differs (lbctl diff --exit-code
	// exits 1).
	Changed bool `json:"changed"`
	// OldSite and NewSite name the bundles' sites; they differ only when
	// the bundles belong to different sites (lbctl diff --cross-site).
	OldSite string `json:"old_site"`
	NewSite string `json:"new_site"`
	// Counts of what changes.
	Counts ReportCounts `json:"counts"`
	// Services, VIPs and nodes added, removed and changed, every name.
	Services Change `json:"services"`
	VIPs     Change `json:"vips"`
	Nodes    Change `json:"nodes"`
	// Files are the rendered files that change; a change identical on
	// several nodes is one entry naming them all.
	Files []FileDiff `json:"files"`
	// Resolved is the unified diff of the resolved models (without
	// diffs: empty).
	Resolved string `json:"resolved,omitempty"`
}

// ReportCounts counts what changes, by kind.
type ReportCounts struct {
	Services Count `json:"services"`
	VIPs     Count `json:"vips"`
	Nodes    Count `json:"nodes"`
	// Files counts Files entries (a change identical on several nodes
	// once).
	Files Count `json:"files"`
}

// Count is the number of things added, removed and changed.
type Count struct {
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
}

func countOf(c Change) Count { return Count{len(c.Added), len(c.Removed), len(c.Changed)} }

func fileCounts(files []FileDiff) Count {
	var c Count
	for _, f := range files {
		switch f.Status {
		case FileAdded:
			c.Added++
		case FileRemoved:
			c.Removed++
		default:
			c.Changed++
		}
	}
	return c
}

// Report returns the diff as a Report; without diffs it leaves out the
// unified diffs (the resolved model's and each file's), keeping the
// counts, names and line counts.
func (d *Diff) Report(diffs bool) Report {
	r := Report{
		Format:   ReportFormat,
		Changed:  d.Changed(),
		OldSite:  d.OldSite,
		NewSite:  d.NewSite,
		Counts:   ReportCounts{countOf(d.Services), countOf(d.VIPs), countOf(d.Nodes), fileCounts(d.Files)},
		Services: d.Services,
		VIPs:     d.VIPs,
		Nodes:    d.Nodes,
		Files:    make([]FileDiff, len(d.Files)),
	}
	copy(r.Files, d.Files)
	if diffs {
		r.Resolved = d.Resolved
	} else {
		for i := range r.Files {
			r.Files[i].Unified = ""
		}
	}
	return r
}
