package nft_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
	"github.com/lbctl/lbctl/bundle/render/nft"
)

func TestFirewall(t *testing.T) {
	site := rendertest.Site()
	fw, err := nft.Firewall(site, site.Node("lb1"))
	if err != nil {
		t.Fatal(err)
	}
	want := model.Firewall{
		VIPs4: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.30"), netip.MustParseAddr("192.0.2.40")},
		VIPs6: []netip.Addr{netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::20"), netip.MustParseAddr("2001:db8::60")},
		Accept4: []model.AddrPort{
			{Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}, {Addr: netip.MustParseAddr("192.0.2.10"), Port: 443},
			{Addr: netip.MustParseAddr("192.0.2.20"), Port: 25}, {Addr: netip.MustParseAddr("192.0.2.20"), Port: 465}, {Addr: netip.MustParseAddr("192.0.2.20"), Port: 587}, {Addr: netip.MustParseAddr("192.0.2.20"), Port: 993},
			{Addr: netip.MustParseAddr("192.0.2.30"), Port: 389}, {Addr: netip.MustParseAddr("192.0.2.30"), Port: 636},
			{Addr: netip.MustParseAddr("192.0.2.40"), Port: 3200}, {Addr: netip.MustParseAddr("192.0.2.40"), Port: 3300},
		},
		Accept6: []model.AddrPort{
			{Addr: netip.MustParseAddr("2001:db8::10"), Port: 80}, {Addr: netip.MustParseAddr("2001:db8::10"), Port: 443},
			{Addr: netip.MustParseAddr("2001:db8::20"), Port: 25}, {Addr: netip.MustParseAddr("2001:db8::20"), Port: 465}, {Addr: netip.MustParseAddr("2001:db8::20"), Port: 587}, {Addr: netip.MustParseAddr("2001:db8::20"), Port: 993},
			{Addr: netip.MustParseAddr("2001:db8::60"), Port: 80},
		},
		Transparent: true,
		Intercepts: []model.Intercept{
			{Prefix: netip.MustParsePrefix("203.0.113.128/25"), Port: 3200, ToAddr: netip.MustParseAddr("192.0.2.40"), ToPort: 3200},
			{Prefix: netip.MustParsePrefix("203.0.113.128/25"), Port: 3300, ToAddr: netip.MustParseAddr("192.0.2.40"), ToPort: 3300},
		},
		// The other node of the site, and the transparent ERP service's
		// servers with both backend ports.
		Handoff: &model.Handoff{
			Port: model.HandoffPort, MSS: model.HandoffMSS,
			Peers4: []netip.Addr{netip.MustParseAddr("198.51.100.12")},
			Backends4: []model.AddrPort{
				{Addr: netip.MustParseAddr("203.0.113.61"), Port: 3200}, {Addr: netip.MustParseAddr("203.0.113.61"), Port: 3300},
				{Addr: netip.MustParseAddr("203.0.113.62"), Port: 3200}, {Addr: netip.MustParseAddr("203.0.113.62"), Port: 3300},
			},
		},
	}
	if d := diff(want, fw); d != "" {
		t.Error(d)
	}
	rendertest.Golden(t, "lab.nft", []byte(nft.NFTText(fw)))
}

func diff(want, got model.Firewall) string {
	w, g := nft.NFTText(want), nft.NFTText(got)
	if w != g {
		return rendertest.LineDiff(w, g)
	}
	return ""
}

// TestRuleCountIndependentOfVIPs: ten times the VIPs, same rules.
func TestRuleCountIndependentOfVIPs(t *testing.T) {
	site := rendertest.Site()
	fw, _ := nft.Firewall(site, site.Node("lb1"))
	big := *site
	big.VIPs = nil
	big.Services = nil
	for i := 0; i < 100; i++ {
		addr := "198.18.0." + itoa(i+1)
		name := "svc" + itoa(i)
		big.Services = append(big.Services, model.Service{Name: name, VIP: addr, Mode: model.ModeTCP,
			Listeners: []model.Listener{{Port: 443, IPv4: true, Action: model.ActionServe}}})
		big.VIPs = append(big.VIPs, model.VIP{Name: addr, Addresses: []netip.Addr{netip.MustParseAddr(addr)}, Services: []string{name},
			Ports: []model.Port{{Port: 443, Mode: model.ModeTCP, Services: []string{name}}}})
	}
	fwBig, err := nft.Firewall(&big, site.Node("lb1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fwBig.Accept4) != 100 {
		t.Fatalf("accept4 has %d pairs, want 100", len(fwBig.Accept4))
	}
	fw.Intercepts, fw.Transparent = nil, false
	if a, b := rules(nft.NFTText(fw)), rules(nft.NFTText(fwBig)); a != b {
		t.Errorf("rules differ with 100 VIPs: %d vs %d", a, b)
	}
}

// rules counts rule lines (not sets, elements or chain headers).
func rules(text string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasSuffix(l, " accept") || strings.HasSuffix(l, " drop") {
			n++
		}
	}
	return n
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestFirewallErrors(t *testing.T) {
	site := rendertest.Site()
	site.Services[0].InterceptPrefixes = []netip.Prefix{netip.MustParsePrefix("2001:db8:5::/48"), netip.MustParsePrefix("203.0.113.1/24")}
	_, err := nft.Firewall(site, site.Node("lb1"))
	if err == nil || !strings.Contains(err.Error(), "no address of its family") || !strings.Contains(err.Error(), "host bits") {
		t.Errorf("err = %v", err)
	}
}

// TestNFTAccepts loads the text in a fresh network namespace with nft -c
// (check only), then really loads it there and lists the table back: the
// kernel must show exactly the rendered text.
func TestNFTAccepts(t *testing.T) {
	rendertest.NeedRoot(t, "nft talks to the kernel (in a throwaway network namespace)")
	bin := rendertest.NeedTool(t, "nft")
	rendertest.NeedTool(t, "unshare")
	for name, site := range map[string]*model.Site{"lab": rendertest.Site(), "campus": rendertest.Campus(t)} {
		fw, err := nft.Firewall(site, &site.Nodes[0])
		if err != nil {
			t.Fatal(err)
		}
		text := nft.NFTText(fw)
		f := filepath.Join(t.TempDir(), "lbctl.nft")
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := rendertest.Run("unshare", "-n", bin, "-c", "-f", f); err != nil {
			t.Fatalf("%s: nft -c: %v\n%s", name, err, out)
		}
		out, err := rendertest.Run("unshare", "-n", "sh", "-c", `"$0" -f "$1" && "$0" list table inet lbctl`, bin, f)
		if err != nil {
			t.Fatalf("%s: nft -f: %v\n%s", name, err, out)
		}
		if normalize(out) != normalize(text) {
			t.Errorf("%s: kernel lists a different table:\n%s", name, rendertest.LineDiff(normalize(text), normalize(out)))
		}
	}
}

var elementsRE = regexp.MustCompile(`elements = \{([^}]*)\}`)

// normalize makes nft listings comparable: nft wraps long element lists and
// prints set elements in hash order, so whitespace is collapsed and the
// elements of each set sorted.
func normalize(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	return elementsRE.ReplaceAllStringFunc(text, func(m string) string {
		inner := elementsRE.FindStringSubmatch(m)[1]
		var elems []string
		for _, e := range strings.Split(inner, ",") {
			elems = append(elems, strings.TrimSpace(e))
		}
		slices.Sort(elems)
		return "elements = { " + strings.Join(elems, ", ") + " }"
	})
}
