package scale

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Markdown renders the rows of a scale run: two tables (install; runtime
// and footprint) and a text growth curve per figure, ready to paste into
// docs/BENCHMARKS.md.
func Markdown(rows []*Row, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scale run of %s (`make bench-scale`, test/scale): sizes %s.\n\n", now.UTC().Format("2006-01-02 15:04 UTC"), sizesOf(rows))
	b.WriteString("Install, per node (both nodes install at once; the profile is lb1's cold install, from its step lines):\n\n")
	b.WriteString("| VIPs | load at start / after cold | cold lb1 / lb2 | before the steps (verify, render, validate) | vip-files | unit starts | health gate | nft (firewall steps) | BIRD (bird step) | announce | routes through both nodes after | incremental lb1 / lb2 (median of 3) | units started/reloaded by it |\n")
	b.WriteString("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, r := range rows {
		p := r.Profile
		fmt.Fprintf(&b, "| %d | %.1f / %.1f | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %d |\n",
			r.VIPs, r.Load, r.LoadCold, sec(r.Cold["lb1"]), sec(r.Cold["lb2"]), sec(p.Before), sec(p.ByKind["vip-files"]),
			sec(p.ByKind["start-unit"]), sec(p.ByKind["health-gate"]), ms(p.ByKind["firewall"]), ms(p.ByKind["bird"]),
			ms(p.ByKind["announce"]), sec(r.ECMP), sec(r.Incr["lb1"]), sec(r.Incr["lb2"]), r.IncrReloads)
	}
	b.WriteString("\nRuntime and footprint on lb1:\n\n")
	b.WriteString("| VIPs | failover p50 / p95 / max (trials) | re-announce p50 | agent CPU (idle) | agent RSS max | HAProxy processes / threads | HAProxy PSS total | PSS per VIP | birdc configure | checks/s at one shared server (VIPs sharing it) |\n")
	b.WriteString("|---:|---|---:|---:|---:|---|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %s / %s / %s ms (%d) | %s | %.2f%% | %.1f MB | %d / %d | %.0f MB | %.1f MB | %s | %.2f (%d) |\n",
			r.VIPs, msf(median(r.Failover)), msf(percentile(r.Failover, 0.95)), msf(slices.Max(append([]time.Duration{0}, r.Failover...))),
			len(r.Failover), sec(median(r.Reannounce)), 100*r.AgentCPU, r.AgentRSSMB, r.HAProxyProcs, r.HAProxyThreads,
			r.HAProxyPSSMB, r.HAProxyPSSMB/float64(r.VIPs), ms(r.BirdConfigure), r.Checks, r.SharedBy)
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
		n := 0
		if top > 0 {
			n = int(40*v/top + 0.5)
		}
		fmt.Fprintf(b, "  %4d VIPs |%s %.3g\n", r.VIPs, strings.Repeat("#", n), v)
	}
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
func ms(d time.Duration) string  { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
func msf(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// Row is the figures of one size.
type Row struct {
	VIPs int
	// Load is the 1-minute load average when the size started and when
	// its cold install ended.
	Load, LoadCold float64
	// Cold is the cold install's wall time per node (both at once), and
	// where lb1's went.
	Cold    map[string]time.Duration
	Profile Profile
	// ECMP is from the end of the installs until the router had a route
	// through both nodes to every VIP.
	ECMP time.Duration
	// Incr is the median incremental install (one service changed), per
	// node; IncrReloads is how many units such an install reloaded or
	// restarted on lb1 (from its steps).
	Incr        map[string]time.Duration
	IncrReloads int
	// Failover is SIGKILL -> route gone at the router, Reannounce the
	// way back (systemd restart, health, announce), over the trials.
	Failover, Reannounce []time.Duration
	// Agent CPU share of a core and max RSS over the idle window (lb1).
	AgentCPU   float64
	AgentRSSMB float64
	// HAProxy on lb1: processes, threads, PSS (MB) of all of them.
	HAProxyProcs, HAProxyThreads int
	HAProxyPSSMB                 float64
	// BirdConfigure is `birdc configure` on lb1 (median of 5).
	BirdConfigure time.Duration
	// Checks is the health checks per second reaching the first server of
	// the shared group over the idle window, SharedBy how many VIPs use it.
	Checks   float64
	SharedBy int
}

// Profile is where a cold install's time went, from its step lines.
type Profile struct {
	// Before is from the start of `lbctl install` to the first step:
	// verify, render, validate (haproxy -c per VIP, bird -p, certificates).
	Before time.Duration
	// ByKind sums the steps of each kind (vip-files, start-unit,
	// health-gate, firewall, bird, announce, ...); After is from the last
	// step to the end (commit).
	ByKind map[string]time.Duration
	After  time.Duration
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
