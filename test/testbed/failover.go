package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/systemd"
)

// Failover is what KillHAProxy did and saw.
type Failover struct {
	Node string `json:"node"`
	VIP  string `json:"vip"`
	Unit string `json:"unit"`
	// MainPID is the unit's main PID inside the node, HostPID the same
	// process seen from the host.
	MainPID int `json:"main_pid"`
	HostPID int `json:"host_pid"`
	// Prefix is the VIP's route at the router that was watched, Via the
	// node's next hop in it.
	Prefix netip.Prefix `json:"prefix"`
	Via    netip.Addr   `json:"via"`
	// Withdrawn is the time from the SIGKILL until the router's kernel
	// told of the route change that took the node's next hop away (a
	// route notification over rtnetlink, confirmed by a look).
	Withdrawn time.Duration `json:"withdrawn"`
	// After is the router's route once the next hop was gone ("" when the
	// route is gone altogether).
	After string `json:"after"`
	// BackAfterStart is, once WaitBack saw the route through the node
	// again, the time from the restarted HAProxy's start (its unit's
	// ExecMainStartTimestampMonotonic: systemd waits RestartSec first)
	// until then; 0 when unknown.
	BackAfterStart time.Duration `json:"back_after_start"`
}

// KillHAProxy sends SIGKILL to the main PID of the VIP's HAProxy unit on a
// systemd node (an unplanned failure: no drain, no stop job) and waits
// until the router's route to the VIP's first address no longer goes
// through that node.
func (s *Site) KillHAProxy(ctx context.Context, node, vip string, timeout time.Duration) (*Failover, error) {
	n := s.Node(node)
	if n == nil {
		return nil, fmt.Errorf("testbed: no node %q", node)
	}
	addr, err := netip.ParseAddr(vip)
	if err != nil {
		return nil, fmt.Errorf("testbed: VIP %q: want the VIP's name, an address: %w", vip, err)
	}
	f := &Failover{Node: node, VIP: vip, Unit: systemd.UnitName(vip), Prefix: hostPrefix(addr), Via: n.Core4}
	if addr.Is6() {
		f.Via = n.Core6
		for _, a := range n.Extra {
			if a.Is6() {
				f.Via = a
				break
			}
		}
	}
	out, err := s.NodeRun(ctx, node, nil, "systemctl", "show", "-p", "MainPID", "--value", f.Unit)
	if err != nil {
		return nil, err
	}
	if f.MainPID, err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil || f.MainPID == 0 {
		return nil, fmt.Errorf("testbed: %s on %s has no main PID (%q)", f.Unit, node, strings.TrimSpace(string(out)))
	}
	if f.HostPID, err = hostPID(n.PID, f.MainPID); err != nil {
		return nil, fmt.Errorf("testbed: %s on %s: %w", f.Unit, node, err)
	}
	if !s.routeHas(ctx, f.Prefix, f.Via) {
		return nil, fmt.Errorf("testbed: the router's route to %s does not go through %s (%s) before the kill", f.Prefix, node, f.Via)
	}
	look, err := s.lookRoutes()
	if err != nil {
		return nil, err
	}
	defer look.Close()
	if ok, err := look.hasVia(f.Prefix, f.Via); err != nil || !ok {
		return nil, fmt.Errorf("testbed: rtnetlink at the router does not see %s through %s (%v)", f.Prefix, f.Via, err)
	}
	start := time.Now()
	if err := unix.Kill(f.HostPID, unix.SIGKILL); err != nil {
		return nil, fmt.Errorf("testbed: kill %d: %w", f.HostPID, err)
	}
	deadline := start.Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	for {
		// The route changes when a notification about it arrives: the
		// look after it tells whether the node's next hop is gone.
		at, noted, err := look.waitNote(f.Prefix, deadline)
		if err != nil {
			return nil, err
		}
		if !noted {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return f, fmt.Errorf("testbed: the router still routes %s through %s %v after the kill", f.Prefix, node, timeout)
		}
		ok, err := look.hasVia(f.Prefix, f.Via)
		if err != nil {
			return nil, err
		}
		if !ok {
			f.Withdrawn = at.Sub(start)
			if rs, err := s.Routes(ctx); err == nil {
				if i := slices.IndexFunc(rs, func(r Route) bool { return r.Prefix == f.Prefix }); i >= 0 {
					f.After = rs[i].String()
				}
			}
			return f, nil
		}
	}
}

// routeHas reports whether the router's route to p has a next hop via.
func (s *Site) routeHas(ctx context.Context, p netip.Prefix, via netip.Addr) bool {
	rs, err := s.Routes(ctx)
	if err != nil {
		return false
	}
	for _, r := range rs {
		if r.Prefix == p {
			return slices.ContainsFunc(r.NextHops, func(h NextHop) bool { return h.Via == via })
		}
	}
	return false
}

// WaitBack waits until the router's route to the failed VIP goes through
// the node again (systemd restarted HAProxy, the agent saw it healthy and
// announced it) and returns how long that took from now.
func (s *Site) WaitBack(ctx context.Context, f *Failover, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for !s.routeHas(ctx, f.Prefix, f.Via) {
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("testbed: the router's route to %s has no next hop via %s %v later", f.Prefix, f.Node, timeout)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
	}
	back := time.Since(start)
	// CLOCK_MONOTONIC is the same in the node's namespaces as here.
	now := monotonic()
	if out, err := s.NodeRun(ctx, f.Node, nil, "systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value", f.Unit); err == nil {
		if us, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && us > 0 {
			if d := now - time.Duration(us)*time.Microsecond; d > 0 && d < back {
				f.BackAfterStart = d
			}
		}
	}
	return back, nil
}

func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// hostPID maps a PID inside the pid namespace of initPID (a node's
// systemd) to the host's PID, from the NSpid lines of /proc/*/status.
func hostPID(initPID, nsPID int) (int, error) {
	var ns syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/pid", initPID), &ns); err != nil {
		return 0, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := strconv.Itoa(nsPID)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/pid", &st) != nil || st.Ino != ns.Ino || st.Dev != ns.Dev {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
				f := strings.Fields(v)
				if len(f) > 1 && f[len(f)-1] == want {
					return pid, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no process with PID %d in the node's pid namespace", nsPID)
}
