package plan

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health"
)

func vip(name string, transparent bool, cfg string, addrs ...string) VIP {
	v := VIP{Name: name, Transparent: transparent, Files: []File{{Path: "haproxy.cfg", Data: []byte(cfg)}}}
	for _, a := range addrs {
		v.Addresses = append(v.Addresses, netip.MustParseAddr(a))
	}
	return v
}

func fw(pairs ...string) model.Firewall {
	var f model.Firewall
	for _, p := range pairs {
		ap := netip.MustParseAddrPort(p)
		f.Accept4 = append(f.Accept4, model.AddrPort{Addr: ap.Addr(), Port: int(ap.Port())})
		f.VIPs4 = append(f.VIPs4, ap.Addr())
	}
	return f
}

func state(serial uint64, bird string, f model.Firewall, vips ...VIP) *State {
	return &State{Serial: serial, VIPs: vips, Firewall: f, BirdConf: []byte(bird)}
}

// render prints the plan one step per line, for comparison with a literal.
func render(p *Plan) string {
	var b strings.Builder
	for _, s := range p.Steps {
		b.WriteString(s.Do.String())
		if s.Undo != nil {
			b.WriteString("  <- " + s.Undo.String())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestCompute(t *testing.T) {
	a := vip("192.0.2.10", false, "a1", "192.0.2.10")
	a2 := vip("192.0.2.10", false, "a2", "192.0.2.10")
	b := vip("192.0.2.11", false, "b1", "192.0.2.11", "2001:db8::11")
	c := vip("192.0.2.12", true, "c1", "192.0.2.12")
	cOpaque := vip("192.0.2.12", false, "c1", "192.0.2.12")
	base := state(1, "bird1", fw("192.0.2.10:80", "192.0.2.11:443"), a, b)

	tests := []struct {
		name      string
		cur, next *State
		want      string
		added     []string
		changed   []string
		removed   []string
	}{
		{
			name: "cold install",
			cur:  nil, next: base,
			want: `firewall (2+0 listeners)  <- firewall (0+0 listeners)
add-addresses 192.0.2.10 192.0.2.11 2001:db8::11  <- remove-addresses 192.0.2.10 192.0.2.11 2001:db8::11
vip-files write [192.0.2.10 192.0.2.11], daemon-reload  <- vip-files remove [192.0.2.10 192.0.2.11], daemon-reload
start-unit 192.0.2.10  <- stop-unit 192.0.2.10
start-unit 192.0.2.11  <- stop-unit 192.0.2.11
health-gate [192.0.2.10 192.0.2.11]
bird  <- bird
announce [192.0.2.10 192.0.2.11]  <- announce []
`,
			added: []string{"192.0.2.10", "192.0.2.11"},
		},
		{
			name: "same release is a no-op",
			cur:  base, next: state(2, "bird1", fw("192.0.2.10:80", "192.0.2.11:443"), a, b),
			want: "",
		},
		{
			name: "one changed VIP is reloaded, nothing else",
			cur:  base, next: state(2, "bird1", fw("192.0.2.10:80", "192.0.2.11:443"), a2, b),
			want: `reload-vip 192.0.2.10  <- reload-vip 192.0.2.10
health-gate [192.0.2.10]
`,
			changed: []string{"192.0.2.10"},
		},
		{
			name: "removed VIP is withdrawn, drained, stopped, then its addresses go",
			cur:  base, next: state(2, "bird1", fw("192.0.2.10:80"), a),
			want: `announce [192.0.2.10]  <- announce [192.0.2.10 192.0.2.11]
drain-wait [192.0.2.11]
stop-unit 192.0.2.11  <- start-unit 192.0.2.11
vip-files remove [192.0.2.11], daemon-reload  <- vip-files write [192.0.2.11], daemon-reload
remove-addresses 192.0.2.11 2001:db8::11  <- add-addresses 192.0.2.11 2001:db8::11
firewall (1+0 listeners)  <- firewall (2+0 listeners)
`,
			removed: []string{"192.0.2.11"},
		},
		{
			name: "added transparent VIP turns TPROXY on before it starts",
			cur:  base, next: state(2, "bird1", fw("192.0.2.10:80", "192.0.2.11:443", "192.0.2.12:80"), a, b, c),
			want: `firewall (3+0 listeners)  <- firewall (2+0 listeners)
tproxy on  <- tproxy off
add-addresses 192.0.2.12  <- remove-addresses 192.0.2.12
vip-files write [192.0.2.12], daemon-reload  <- vip-files remove [192.0.2.12], daemon-reload
start-unit 192.0.2.12  <- stop-unit 192.0.2.12
health-gate [192.0.2.12]
announce [192.0.2.10 192.0.2.11 192.0.2.12]  <- announce [192.0.2.10 192.0.2.11]
`,
			added: []string{"192.0.2.12"},
		},
		{
			name: "transparent toggled restarts the unit and turns TPROXY off after",
			cur:  state(1, "bird1", fw("192.0.2.12:80"), c), next: state(2, "bird1", fw("192.0.2.12:80"), cOpaque),
			want: `vip-files write [192.0.2.12], daemon-reload  <- vip-files write [192.0.2.12], daemon-reload
restart-unit 192.0.2.12  <- restart-vip 192.0.2.12
health-gate [192.0.2.12]
tproxy off  <- tproxy on
`,
			changed: []string{"192.0.2.12"},
		},
		{
			name: "replacing a VIP: the old one serves until the new one is announced",
			cur:  base, next: state(2, "bird1", fw("192.0.2.10:80", "192.0.2.12:80"), a, c),
			want: `announce [192.0.2.10]  <- announce [192.0.2.10 192.0.2.11]
firewall (3+0 listeners)  <- firewall (2+0 listeners)
tproxy on  <- tproxy off
add-addresses 192.0.2.12  <- remove-addresses 192.0.2.12
vip-files write [192.0.2.12], daemon-reload  <- vip-files remove [192.0.2.12], daemon-reload
start-unit 192.0.2.12  <- stop-unit 192.0.2.12
health-gate [192.0.2.12]
announce [192.0.2.10 192.0.2.12]  <- announce [192.0.2.10]
drain-wait [192.0.2.11]
stop-unit 192.0.2.11  <- start-unit 192.0.2.11
vip-files remove [192.0.2.11], daemon-reload  <- vip-files write [192.0.2.11], daemon-reload
remove-addresses 192.0.2.11 2001:db8::11  <- add-addresses 192.0.2.11 2001:db8::11
firewall (2+0 listeners)  <- firewall (3+0 listeners)
`,
			added:   []string{"192.0.2.12"},
			removed: []string{"192.0.2.11"},
		},
		{
			name: "one vip-files step for an added VIP and a restarted one, one for a removed one",
			cur:  state(1, "bird1", fw("192.0.2.11:443", "192.0.2.12:80"), b, c),
			next: state(2, "bird1", fw("192.0.2.10:80", "192.0.2.12:80"), a, cOpaque),
			want: `announce [192.0.2.12]  <- announce [192.0.2.11 192.0.2.12]
firewall (3+0 listeners)  <- firewall (2+0 listeners)
add-addresses 192.0.2.10  <- remove-addresses 192.0.2.10
vip-files write [192.0.2.10 192.0.2.12], daemon-reload  <- vip-files write [192.0.2.12] remove [192.0.2.10], daemon-reload
start-unit 192.0.2.10  <- stop-unit 192.0.2.10
restart-unit 192.0.2.12  <- restart-vip 192.0.2.12
health-gate [192.0.2.10 192.0.2.12]
announce [192.0.2.10 192.0.2.12]  <- announce [192.0.2.12]
drain-wait [192.0.2.11]
stop-unit 192.0.2.11  <- start-unit 192.0.2.11
vip-files remove [192.0.2.11], daemon-reload  <- vip-files write [192.0.2.11], daemon-reload
remove-addresses 192.0.2.11 2001:db8::11  <- add-addresses 192.0.2.11 2001:db8::11
firewall (2+0 listeners)  <- firewall (3+0 listeners)
tproxy off  <- tproxy on
`,
			added:   []string{"192.0.2.10"},
			changed: []string{"192.0.2.12"},
			removed: []string{"192.0.2.11"},
		},
		{
			name: "bird config change reconfigures and re-announces",
			cur:  base, next: state(2, "bird2", fw("192.0.2.10:80", "192.0.2.11:443"), a, b),
			want: `bird  <- bird
announce [192.0.2.10 192.0.2.11]  <- announce [192.0.2.10 192.0.2.11]
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compute(tt.cur, tt.next)
			if got := render(p); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"added", p.Added, tt.added}, {"changed", p.Changed, tt.changed}, {"removed", p.Removed, tt.removed}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			if again := Compute(tt.next, tt.next); !again.Empty() {
				t.Errorf("planning the reached state again is not empty:\n%s", render(again))
			}
		})
	}
}

// TestOrderingNeverBlackholes checks the ordering invariants on every pair of
// a set of states: a VIP is announced only after its address exists and it
// passed the health gate; it is stopped only after it is withdrawn.
func TestOrderingNeverBlackholes(t *testing.T) {
	a := vip("192.0.2.10", false, "a1", "192.0.2.10")
	a2 := vip("192.0.2.10", true, "a2", "192.0.2.10", "2001:db8::10")
	b := vip("192.0.2.11", false, "b1", "192.0.2.11")
	c := vip("192.0.2.12", true, "c1", "192.0.2.12")
	states := []*State{
		nil,
		state(1, "x", fw("192.0.2.10:80"), a),
		state(2, "x", fw("192.0.2.10:80", "192.0.2.11:80"), a, b),
		state(3, "y", fw("192.0.2.10:80", "192.0.2.12:80"), a2, c),
		state(4, "y", fw("192.0.2.11:80"), b),
		state(5, "y", model.Firewall{}),
	}
	for _, cur := range states {
		for _, next := range states[1:] {
			p := Compute(cur, next)
			checkOrdering(t, p)
		}
	}
}

func checkOrdering(t *testing.T, p *Plan) {
	t.Helper()
	announced := map[string]int{}
	for i, s := range p.Steps {
		switch s.Do.Kind {
		case Announce:
			for _, n := range s.Do.Names {
				announced[n] = i
			}
		case StopUnit:
			n := s.Do.VIP.Name
			if slices.Contains(p.Removed, n) {
				j := indexOf(p, func(o Op) bool { return o.Kind == Announce && !slices.Contains(o.Names, n) })
				if j < 0 || j > i {
					t.Errorf("%s stopped at step %d before it was withdrawn", n, i)
				}
			}
		}
	}
	// A unit starts or restarts only after a VIPFiles step wrote its files
	// (and reloaded systemd); a removed VIP's files go after it stopped.
	for i, s := range p.Steps {
		switch {
		case s.Do.Kind == StartUnit || s.Do.Kind == RestartUnit:
			n := s.Do.VIP.Name
			j := indexOf(p, func(o Op) bool {
				return o.Kind == VIPFiles && slices.ContainsFunc(o.VIPs, func(v VIP) bool { return v.Name == n })
			})
			if j < 0 || j > i {
				t.Errorf("%s started at step %d, its files written at %d", n, i, j)
			}
		case s.Do.Kind == VIPFiles:
			for _, n := range s.Do.Names {
				j := indexOf(p, func(o Op) bool { return o.Kind == StopUnit && o.VIP.Name == n })
				if j < 0 || j > i {
					t.Errorf("%s: files removed at step %d, stopped at %d", n, i, j)
				}
			}
		}
	}
	if n := count(p, VIPFiles); n > 2 {
		t.Errorf("%d vip-files steps (daemon-reloads), want at most 2", n)
	}
	for _, n := range append(slices.Clone(p.Added), p.Changed...) {
		start := indexOf(p, func(o Op) bool { return o.VIP != nil && o.VIP.Name == n && o.Kind != StopUnit })
		gate := indexOf(p, func(o Op) bool { return o.Kind == HealthGate && slices.Contains(o.Names, n) })
		if start < 0 || gate < start {
			t.Errorf("%s: health gate at %d, start at %d", n, gate, start)
		}
		if i, ok := announced[n]; ok && i < gate {
			t.Errorf("%s announced at step %d before its health gate at %d", n, i, gate)
		}
	}
}

func indexOf(p *Plan, f func(Op) bool) int {
	for i, s := range p.Steps {
		if f(s.Do) {
			return i
		}
	}
	return -1
}

func count(p *Plan, k Kind) int {
	n := 0
	for _, s := range p.Steps {
		if s.Do.Kind == k {
			n++
		}
	}
	return n
}

// TestColdInstallReloadsOnce: the first install of many VIPs writes all
// their files in one step with one daemon-reload, before any unit starts,
// and that step's undo removes them all with one daemon-reload.
func TestColdInstallReloadsOnce(t *testing.T) {
	var vips []VIP
	for i := range 20 {
		vips = append(vips, vip(fmt.Sprintf("192.0.2.%d", 100+i), i%3 == 0, "x", fmt.Sprintf("192.0.2.%d", 100+i)))
	}
	p := Compute(nil, state(1, "bird", model.Firewall{}, vips...))
	if n := count(p, VIPFiles); n != 1 {
		t.Fatalf("%d vip-files steps, want 1:\n%s", n, render(p))
	}
	i := indexOf(p, func(o Op) bool { return o.Kind == VIPFiles })
	s := p.Steps[i]
	if len(s.Do.VIPs) != len(vips) || len(s.Do.Names) != 0 {
		t.Errorf("vip-files writes %d VIPs and removes %v, want %d and none", len(s.Do.VIPs), s.Do.Names, len(vips))
	}
	if s.Undo == nil || s.Undo.Kind != VIPFiles || len(s.Undo.VIPs) != 0 || !slices.Equal(s.Undo.Names, p.Added) {
		t.Errorf("undo of vip-files: %v, want every added VIP removed", s.Undo)
	}
	if first := indexOf(p, func(o Op) bool { return o.Kind == StartUnit }); first != i+1 || count(p, StartUnit) != len(vips) {
		t.Errorf("starts: first at %d (vip-files at %d), %d of them, want %d right after:\n%s", first, i, count(p, StartUnit), len(vips), render(p))
	}
}

// TestFirewallUnionKeepsHandoff: the firewall an install applies while
// both releases run admits both releases' handoff peers, so forwarding
// between the nodes never stops during a change; the same release twice
// needs no firewall step.
func TestFirewallUnionKeepsHandoff(t *testing.T) {
	h := func(peers ...string) *model.Handoff {
		var ips []netip.Addr
		for _, p := range peers {
			ips = append(ips, netip.MustParseAddr(p))
		}
		return &model.Handoff{Port: model.HandoffPort, MSS: model.HandoffMSS, Peers4: ips}
	}
	u := unionFW(model.Firewall{Handoff: h("198.51.100.2")}, model.Firewall{Handoff: h("198.51.100.3", "198.51.100.2")})
	if u.Handoff == nil || !slices.Equal(u.Handoff.Peers4, []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")}) {
		t.Fatalf("union handoff %+v", u.Handoff)
	}
	if u := unionFW(model.Firewall{Handoff: h("198.51.100.2")}, model.Firewall{}); u.Handoff == nil {
		t.Fatal("the union dropped the current release's handoff")
	}
	fw := model.Firewall{Handoff: h("198.51.100.3", "198.51.100.2")}.Canonical()
	if !reflect.DeepEqual(fw, unionFW(fw, fw)) {
		t.Errorf("union of a firewall with itself differs: %+v", unionFW(fw, fw))
	}
}

// TestAnnounceCarriesHealthChanges: a VIP whose addresses stay but whose
// health specification changes (a backend's min_up, a probe) is announced
// again, so the agent evaluates the new specification; the announcement
// keeps what the VIP's haproxy.cfg says about state events although it
// carries no files; an unchanged specification announces nothing.
func TestAnnounceCarriesHealthChanges(t *testing.T) {
	const events = "global\n  log unix@/run/lbctl/haproxy-events.sock len 1024 format rfc5424 local0 notice\n"
	a := vip("192.0.2.10", false, events+"a1", "192.0.2.10")
	a.Backends = []health.Backend{{Name: "be", MinUp: 1}}
	a2 := vip("192.0.2.10", false, events+"a2", "192.0.2.10")
	a2.Backends = []health.Backend{{Name: "be", MinUp: 2}}
	a3 := vip("192.0.2.10", false, events+"a3", "192.0.2.10")
	a3.Backends = a.Backends
	cur := state(1, "bird", fw("192.0.2.10:80"), a)

	p := Compute(cur, state(2, "bird", fw("192.0.2.10:80"), a2))
	i := indexOf(p, func(o Op) bool { return o.Kind == Announce })
	if i < 0 {
		t.Fatalf("min_up 1 -> 2 announces nothing:\n%s", render(p))
	}
	got := p.Steps[i].Do.VIPs
	if len(got) != 1 || len(got[0].Files) != 0 || !reflect.DeepEqual(got[0].Health().Backends, a2.Backends) || !got[0].Health().Events {
		t.Errorf("announced %+v, want the new backends, no files, events on", got)
	}
	if n := count(Compute(cur, state(2, "bird", fw("192.0.2.10:80"), a3)), Announce); n != 0 {
		t.Errorf("a haproxy.cfg change with the same health specification announces %d times, want 0", n)
	}
}
