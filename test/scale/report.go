package scale

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Markdown renders the rows of a scale run: three tables (cold install;
// incremental install; runtime and footprint), the sizes that failed, and
// a text growth curve per figure, ready to paste into docs/BENCHMARKS.md.
// Every figure comes with the 1-minute load average when it was taken: on
// a busy machine every time is longer.
func Markdown(rows []*Row, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scale run of %s (`make bench-scale`, test/scale): sizes %s.\n\n", now.UTC().Format("2006-01-02 15:04 UTC"), sizesOf(rows))
	coldTable(&b, rows)
	incrTable(&b, rows)
	runtimeTable(&b, rows)
	for _, r := range rows {
		if r.Failed != "" {
			fmt.Fprintf(&b, "\n**%d VIPs failed during %s** after %s (the figures before it are in the tables, — marks the others; the test log says why).\n",
				r.VIPs, r.Failed, sec(r.Took))
		}
	}
	if len(rows) > 1 {
		b.WriteString("\nGrowth with the VIP count:\n\n```\n")
		curve(&b, rows, "cold install lb1 (s)", func(r *Row) float64 { return r.Cold["lb1"].Seconds() })
		curve(&b, rows, "incremental install lb1 (s)", func(r *Row) float64 { return r.Incr["lb1"].Seconds() })
		curve(&b, rows, "failover p50 (ms)", func(r *Row) float64 { return float64(median(r.Failover).Microseconds()) / 1000 })
		curve(&b, rows, "agent CPU idle (% of a core)", func(r *Row) float64 { return 100 * r.AgentCPU })
		curve(&b, rows, "agent RSS (MB)", func(r *Row) float64 { return r.AgentRSSMB })
		curve(&b, rows, "HAProxy PSS total (MB)", func(r *Row) float64 { return r.HAProxyPSSMB })
		curve(&b, rows, "birdc configure (ms)", func(r *Row) float64 { return float64(r.BirdConfigure.Microseconds()) / 1000 })
		curve(&b, rows, "checks/s at the shared server", func(r *Row) float64 { return r.Checks })
		b.WriteString("```\n")
	}
	return b.String()
}

func coldTable(b *strings.Builder, rows []*Row) {
	b.WriteString("Cold install, one node at a time (lb1 while lb2 is idle, then lb2 while lb1 serves); where lb1's time went, from its " +
		"phases and steps; the CPU lb1's node used meanwhile (its cgroups) and the install command's own (lbctl and its `haproxy -c`):\n\n")
	b.WriteString("| VIPs | cold lb1 (load after) | cold lb2 (load after) | verify + render | validate | vip-files | unit starts | health gate | " +
		"firewall / BIRD / announce | CPU: install / HAProxy / systemd / agent / node total | routes through both nodes after |\n")
	b.WriteString("|---:|---|---|---:|---:|---:|---:|---:|---|---|---:|\n")
	for _, r := range rows {
		p, c := r.Profile, r.ColdCPU
		fmt.Fprintf(b, "| %d | %s (%s) | %s (%s) | %s | %s | %s | %s | %s | %s / %s / %s | %s / %s / %s / %s / %s | %s |\n",
			r.VIPs, sec(r.Cold["lb1"]), load(r.LoadCold["lb1"]), sec(r.Cold["lb2"]), load(r.LoadCold["lb2"]),
			sec(p.Phases["verify"]+p.Phases["render"]), sec(p.Phases["validate"]), sec(p.ByKind["vip-files"]),
			sec(p.ByKind["start-unit"]), sec(p.ByKind["health-gate"]), ms(p.ByKind["firewall"]), ms(p.ByKind["bird"]), ms(p.ByKind["announce"]),
			sec(c.Install), sec(c.HAProxy), sec(c.Systemd), sec(c.Agent), sec(c.Total), sec(r.ECMP))
	}
}

func incrTable(b *strings.Builder, rows []*Row) {
	b.WriteString("\nIncremental install (web/wiki's balance changed, median of 3 per node, one node after the other); lb1's median " +
		"install: before the steps (verify, render, plan, validate, stage), the reload step, the health gate:\n\n")
	b.WriteString("| VIPs | lb1 / lb2 (load after) | before the steps | reload step | health gate | units started/reloaded |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		p := r.IncrProfile
		pre := p.Phases["verify"] + p.Phases["render"] + p.Phases["lock"] + p.Phases["plan"] + p.Phases["validate"] + p.Phases["stage"]
		fmt.Fprintf(b, "| %d | %s / %s (%s) | %s | %s | %s | %d |\n", r.VIPs, sec(r.Incr["lb1"]), sec(r.Incr["lb2"]), load(r.LoadIncr),
			sec(pre), sec(p.ByKind["reload-vip"]), sec(p.ByKind["health-gate"]), r.IncrReloads)
	}
}

func runtimeTable(b *strings.Builder, rows []*Row) {
	b.WriteString("\nRuntime and footprint on lb1:\n\n")
	b.WriteString("| VIPs | failover p50 / p95 / max (trials; load after) | re-announce p50 (after HAProxy's restart) | agent CPU idle / RSS max (load after) | " +
		"HAProxy processes / threads | HAProxy PSS total | PSS per VIP | birdc configure | checks/s at one shared server (VIPs sharing it) |\n")
	b.WriteString("|---:|---|---:|---|---|---:|---:|---:|---|\n")
	for _, r := range rows {
		pss := "—"
		if r.HAProxyPSSMB > 0 {
			pss = fmt.Sprintf("%.1f MB", r.HAProxyPSSMB/float64(r.VIPs))
		}
		fmt.Fprintf(b, "| %d | %s / %s / %s ms (%d; %s) | %s (%s) | %.2f%% / %.1f MB (%s) | %d / %d | %.0f MB | %s | %s | %.2f (%d) |\n",
			r.VIPs, msf(median(r.Failover)), msf(percentile(r.Failover, 0.95)), msf(slices.Max(append([]time.Duration{0}, r.Failover...))),
			len(r.Failover), load(r.LoadFailover), sec(median(r.Reannounce)), sec(median(r.ReannounceAfterStart)), 100*r.AgentCPU, r.AgentRSSMB, load(r.LoadIdle),
			r.HAProxyProcs, r.HAProxyThreads, r.HAProxyPSSMB, pss, ms(r.BirdConfigure), r.Checks, r.SharedBy)
	}
}

func sizesOf(rows []*Row) string {
	s := make([]string, len(rows))
	for i, r := range rows {
		s[i] = fmt.Sprint(r.VIPs)
	}
	return strings.Join(s, ", ")
}

// curve draws one bar per size, scaled to the largest value.
func curve(b *strings.Builder, rows []*Row, title string, f func(*Row) float64) {
	top := 0.0
	for _, r := range rows {
		top = max(top, f(r))
	}
	fmt.Fprintf(b, "%s\n", title)
	for _, r := range rows {
		v := f(r)
		if v == 0 {
			fmt.Fprintf(b, "  %4d VIPs | —\n", r.VIPs) // not measured (a failed size)
			continue
		}
		n := 0
		if top > 0 {
			n = int(40*v/top + 0.5)
		}
		fmt.Fprintf(b, "  %4d VIPs |%s %.3g\n", r.VIPs, strings.Repeat("#", n), v)
	}
}

// sec, ms, msf and load print — for a figure not taken (zero).
func sec(d time.Duration) string { return orDash(d != 0, fmt.Sprintf("%.2f s", d.Seconds())) }
func ms(d time.Duration) string {
	return orDash(d != 0, fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000))
}
func msf(d time.Duration) string {
	return orDash(d != 0, fmt.Sprintf("%.1f", float64(d.Microseconds())/1000))
}
func load(l float64) string { return orDash(l != 0, fmt.Sprintf("load %.1f", l)) }

func orDash(ok bool, s string) string {
	if ok {
		return s
	}
	return "—"
}

// Row is the figures of one size.
type Row struct {
	VIPs int
	// Load is the 1-minute load average when the size started; every
	// Load* field is the one when that figure was taken.
	Load float64
	// Cold is each node's cold install, wall time (one node at a time),
	// LoadCold the load when it ended; Profile is where lb1's went,
	// ColdCPU the CPU lb1's node and its install used meanwhile.
	Cold     map[string]time.Duration
	LoadCold map[string]float64
	Profile  Profile
	ColdCPU  NodeCPU
	// ECMP is from the end of the installs until the router had a route
	// through both nodes to every VIP.
	ECMP time.Duration
	// Incr is the median incremental install (one service changed), per
	// node; IncrProfile lb1's median one; IncrReloads is how many units
	// such an install reloaded or restarted on lb1 (from its steps).
	Incr        map[string]time.Duration
	IncrProfile Profile
	IncrReloads int
	LoadIncr    float64
	// Failover is SIGKILL -> route gone at the router, Reannounce the
	// way back (systemd restart, health, announce), over the trials;
	// ReannounceAfterStart the way back from the restarted HAProxy's
	// start (after systemd's RestartSec).
	Failover, Reannounce, ReannounceAfterStart []time.Duration
	LoadFailover                               float64
	// Agent CPU share of a core and max RSS over the idle window (lb1).
	AgentCPU   float64
	AgentRSSMB float64
	LoadIdle   float64
	// HAProxy on lb1: processes, threads, PSS (MB) of all of them.
	HAProxyProcs, HAProxyThreads int
	HAProxyPSSMB                 float64
	// BirdConfigure is `birdc configure` on lb1 (median of 5).
	BirdConfigure time.Duration
	// Checks is the health checks per second reaching the first server of
	// the shared group over the idle window, SharedBy how many VIPs use it.
	Checks   float64
	SharedBy int
	// Stage is the stage under way; Failed is the stage the size failed
	// in ("" when it completed); Took is the size's whole run.
	Stage, Failed string
	Took          time.Duration
}

func newRow(vips int) *Row {
	return &Row{VIPs: vips, Cold: map[string]time.Duration{}, LoadCold: map[string]float64{}, Incr: map[string]time.Duration{}}
}

// Profile is where an install's time went.
type Profile struct {
	// Wall is the install command's wall time, CPU the CPU it and its
	// children used.
	Wall, CPU time.Duration
	// Phases is the install's own account (its "took:" line): verify,
	// render, lock, plan, validate (haproxy -c per new or changed VIP,
	// bird -p, certificates), stage, apply, commit.
	Phases map[string]time.Duration
	// ByKind sums the steps of each kind (vip-files, start-unit,
	// reload-vip, health-gate, firewall, bird, announce, ...), from the
	// times between the step lines; Steps counts them.
	ByKind map[string]time.Duration
	Steps  map[string]int
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// NodeCPU is CPU time used on an LB node, by its cgroups: everything, the
// HAProxy units, systemd (PID 1), the agent; and Install, the install
// command's own (lbctl, haproxy -c), which runs outside them.
type NodeCPU struct {
	Total, HAProxy, Systemd, Agent, Install time.Duration
}

func (c NodeCPU) since(b NodeCPU) NodeCPU {
	return NodeCPU{Total: c.Total - b.Total, HAProxy: c.HAProxy - b.HAProxy, Systemd: c.Systemd - b.Systemd, Agent: c.Agent - b.Agent}
}

var tookLine = regexp.MustCompile(`^\s*took: (.*)$`)

// parseTook reads the phases of an install's "took:" line ("verify 82ms,
// render 82ms, ...") into phases.
func parseTook(out string, phases map[string]time.Duration) {
	for _, l := range strings.Split(out, "\n") {
		m := tookLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		for _, f := range strings.Split(m[1], ", ") {
			name, d, ok := strings.Cut(f, " ")
			if v, err := time.ParseDuration(d); ok && err == nil {
				phases[name] = v
			}
		}
	}
}
