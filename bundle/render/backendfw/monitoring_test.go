package backendfw_test

import (
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/backendfw"
	"github.com/lbctl/lbctl/bundle/render/icinga2"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
)

// labCheckPortApart is the lab site with web/a's listeners sent to port
// 9000 while its http check (HAProxy's) stays on the main port 8080: the
// LB nodes need both, Icinga 2 checks only 9000.
func labCheckPortApart() *model.Site {
	site := rendertest.Site()
	s := site.Service("web/a")
	for i := range s.Listeners {
		s.Listeners[i].BackendPort = 9000
	}
	return site
}

var (
	icingaObject = regexp.MustCompile(`^object (Host|Service) "([^"]+)" \{$`)
	icingaAttr   = regexp.MustCompile(`^\s*(address6?|host_name|vars\.(?:http|tcp|smtp|ssl)_port) = "?([^"]+)"?$`)
	nftSet       = regexp.MustCompile(`^\s*set (\w+) \{$`)
	nftElements  = regexp.MustCompile(`^\s*elements = \{ (.*) \}$`)
	nftHeader    = regexp.MustCompile(`^# Backend firewall of (\S+) \(`)
)

// icingaBackendChecks reads the rendered backends.conf: for each backend
// host (by name), its address and the ports checked on it.
func icingaBackendChecks(t *testing.T, conf []byte) (addrs map[string]netip.Addr, ports map[string][]int) {
	addrs, ports = map[string]netip.Addr{}, map[string][]int{}
	kind, host := "", ""
	for _, line := range strings.Split(string(conf), "\n") {
		if m := icingaObject.FindStringSubmatch(line); m != nil {
			kind, host = m[1], strings.TrimPrefix(m[2], icinga2.BackendHostPrefix)
			continue
		}
		m := icingaAttr.FindStringSubmatch(line)
		switch {
		case m == nil:
		case kind == "Host" && strings.HasPrefix(m[1], "address"):
			addrs[host] = netip.MustParseAddr(m[2])
		case kind == "Service" && m[1] == "host_name":
			host = strings.TrimPrefix(m[2], icinga2.BackendHostPrefix)
		case kind == "Service":
			p, err := strconv.Atoi(m[2])
			if err != nil {
				t.Fatalf("backends.conf: %q", line)
			}
			ports[host] = append(ports[host], p)
		}
	}
	for h := range ports {
		slices.Sort(ports[h])
		ports[h] = slices.Compact(ports[h])
	}
	return addrs, ports
}

// nftSnippet is what a backend snippet admits, as read back from its text.
type nftSnippet struct {
	host  string
	sets  map[string][]string
	rules []string
}

func parseSnippet(data []byte) nftSnippet {
	s := nftSnippet{sets: map[string][]string{}}
	set := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := nftHeader.FindStringSubmatch(line); m != nil {
			s.host = m[1]
		}
		if m := nftSet.FindStringSubmatch(line); m != nil {
			set = m[1]
			s.sets[set] = nil
			continue
		}
		if m := nftElements.FindStringSubmatch(line); m != nil && set != "" {
			s.sets[set] = strings.Split(m[1], ", ")
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "tcp dport") {
			s.rules = append(s.rules, strings.TrimSpace(line))
		}
	}
	return s
}

// TestMonitoringMatchesIcinga renders Icinga 2 and the backend firewall of
// the same site and checks that they agree: every (backend host, port)
// that Icinga 2 checks is admitted from every monitoring prefix of the
// host's address family, and the monitoring hosts are admitted to nothing
// else.
func TestMonitoringMatchesIcinga(t *testing.T) {
	for name, site := range map[string]*model.Site{
		"lab": rendertest.Site(), "lab, check port apart": labCheckPortApart(), "campus": rendertest.Campus(t),
	} {
		t.Run(name, func(t *testing.T) {
			if len(site.Monitoring) == 0 {
				t.Fatal("the site names no monitoring hosts")
			}
			var mon4, mon6 []string
			for _, m := range site.Monitoring {
				if m.Addr().Is4() {
					mon4 = append(mon4, m.String())
				} else {
					mon6 = append(mon6, m.String())
				}
			}
			ic, err := icinga2.Render(site, icinga2.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var conf []byte
			for _, f := range ic {
				if f.Path == icinga2.BackendsFile {
					conf = f.Data
				}
			}
			addrs, checked := icingaBackendChecks(t, conf)
			if len(checked) == 0 {
				t.Fatal("no backend checks in backends.conf")
			}
			files, err := backendfw.Render(site)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			extraLBPort := false
			for _, f := range files {
				if !strings.HasPrefix(f.Path, backendfw.BackendDir+"/") {
					continue
				}
				s := parseSnippet(f.Data)
				seen[s.host] = true
				want := checked[s.host]
				var got []int
				for _, e := range s.sets["monports"] {
					p, _ := strconv.Atoi(e)
					got = append(got, p)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: monitoring admitted to ports %v, Icinga 2 checks %v", s.host, got, want)
				}
				for _, p := range got {
					if !slices.Contains(s.sets["ports"], strconv.Itoa(p)) {
						t.Errorf("%s: monitored port %d is not a firewalled port", s.host, p)
					}
				}
				extraLBPort = extraLBPort || len(s.sets["ports"]) > len(got)
				for _, fam := range []struct {
					set, match string
					want       []string
				}{{"mon4", "ip saddr @mon4", mon4}, {"mon6", "ip6 saddr @mon6", mon6}} {
					rule := "tcp dport @monports " + fam.match + " accept"
					has := slices.ContainsFunc(s.rules, func(r string) bool { return strings.HasPrefix(r, rule) })
					if len(fam.want) > 0 && len(want) > 0 {
						if !has || !slices.Equal(s.sets[fam.set], fam.want) {
							t.Errorf("%s: %s = %v, rule present %v; want %v admitted", s.host, fam.set, s.sets[fam.set], has, fam.want)
						}
					} else if has {
						t.Errorf("%s: %q without monitoring prefixes of that family or checked ports", s.host, rule)
					}
				}
				a := addrs[s.host]
				if len(want) > 0 && ((a.Is4() && len(mon4) == 0) || (a.Is6() && len(mon6) == 0)) {
					t.Errorf("%s (%s): checked, but no monitoring prefix of its family", s.host, a)
				}
				if i := slices.IndexFunc(s.rules, func(r string) bool { return strings.HasSuffix(r, "drop") }); i != len(s.rules)-1 {
					t.Errorf("%s: the drop rule is not last: %v", s.host, s.rules)
				}
			}
			for _, h := range slices.Sorted(maps.Keys(checked)) {
				if !seen[h] {
					t.Errorf("Icinga 2 checks backend %s, which has no firewall snippet", h)
				}
			}
			if name == "lab, check port apart" && !extraLBPort {
				t.Error("no host firewalls a port Icinga 2 does not check: the case tests nothing")
			}
		})
	}
}

// TestNoMonitoringNoSets: a site without monitoring hosts renders the
// snippets as before, with no monitoring sets or rules.
func TestNoMonitoringNoSets(t *testing.T) {
	site := rendertest.Site()
	site.Monitoring = nil
	files, err := backendfw.Render(site)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.Contains(string(f.Data), "mon") {
			t.Errorf("%s mentions monitoring:\n%s", f.Path, f.Data)
		}
	}
}

func TestMonitoringPrefixRefused(t *testing.T) {
	site := rendertest.Site()
	site.Monitoring = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), {}}
	_, err := backendfw.Render(site)
	if err == nil || !strings.Contains(err.Error(), "would admit everyone") || !strings.Contains(err.Error(), "monitoring prefix unset") {
		t.Errorf("err = %v", err)
	}
}
