package target

import (
	"context"
	"net/netip"
	"testing"

	"github.com/lbctl/lbctl/bundle/intent"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/plan"
)

func campus(t *testing.T) *model.Site {
	t.Helper()
	site, err := intent.Resolve(context.Background(), "../../examples/campus", intent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return site
}

func TestStateOfCampus(t *testing.T) {
	site := campus(t)
	st, err := State(site, site.Node("lb1"), 9, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.VIPs) != len(site.VIPs) || st.Serial != 9 || len(st.BirdConf) == 0 || len(st.Firewall.Accept4) == 0 {
		t.Fatalf("state: %d VIPs, bird %d bytes, %d v4 listeners", len(st.VIPs), len(st.BirdConf), len(st.Firewall.Accept4))
	}
	find := func(vip string, port uint16, a string) *health.Probe {
		v := st.VIP(vip)
		for i := range v.Probes {
			if v.Probes[i].Addr == netip.AddrPortFrom(netip.MustParseAddr(a), port) {
				return &v.Probes[i]
			}
		}
		return nil
	}
	for _, c := range []struct {
		vip, addr string
		port      uint16
		want      health.Probe
	}{
		// TYPO3 sites pass port 80 to Apache: a plain HTTP probe.
		{"192.0.2.10", "192.0.2.10", 80, health.Probe{Kind: health.ProbeHTTP, Path: "/"}},
		{"192.0.2.10", "2001:db8:10::10", 443, health.Probe{Kind: health.ProbeHTTP, TLS: true, Path: "/"}},
		// The wiki redirects port 80 on the LB.
		{"192.0.2.11", "192.0.2.11", 80, health.Probe{Kind: health.ProbeHTTP, Path: "/", RedirectOnly: true}},
		{"192.0.2.20", "2001:db8:20::20", 25, health.Probe{Kind: health.ProbeTCP}},
		{"192.0.2.30", "192.0.2.30", 636, health.Probe{Kind: health.ProbeTLS}},
	} {
		p := find(c.vip, c.port, c.addr)
		if p == nil {
			t.Errorf("%s: no probe on %s:%d", c.vip, c.addr, c.port)
			continue
		}
		if p.Kind != c.want.Kind || p.TLS != c.want.TLS || p.RedirectOnly != c.want.RedirectOnly || p.Path != c.want.Path {
			t.Errorf("%s %s:%d: probe %+v, want %+v", c.vip, c.addr, c.port, *p, c.want)
		}
		if p.Kind != health.ProbeTCP && p.Host == "" {
			t.Errorf("%s: probe without Host/SNI", c.vip)
		}
	}
	for _, v := range st.VIPs {
		if len(v.Backends) == 0 || v.Files[0].Path == "" {
			t.Errorf("%s: backends %v files %d", v.Name, v.Backends, len(v.Files))
		}
	}
	if !st.VIP("192.0.2.40").Transparent || !st.TProxy() {
		t.Error("the legacy VIP is not transparent")
	}
	// Pure: the same input gives the same state.
	again, _ := State(site, site.Node("lb1"), 9, Options{})
	if p := plan.Compute(st, again); !p.Empty() {
		t.Errorf("rendering twice differs: %+v", p)
	}
}
