package intent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genTree writes a synthetic site of n services in 100 team folders: each
// team has a defaults.yaml with policy, 90% http services sharing VIPs of
// ten services each (Host/SNI routing) and 10% tcp services on VIPs of
// their own, plus a generated zone and inventory.
func genTree(tb testing.TB, n int) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "site")
	const teams = 100
	per := n / teams
	var zone, inv strings.Builder
	zone.WriteString("$ORIGIN bench.example.\n$TTL 300\n@ IN SOA ns h 1 3600 600 86400 300\nns IN A 198.51.100.53\n")
	inv.WriteString("all:\n  children:\n")
	write := func(rel, s string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write("site.yaml", "site: bench\ninventory: inventory.yaml\nzone: bench.zone\n")
	write("defaults.yaml", "defaults:\n  contacts: [noc@bench.example]\n  tls: {min_version: \"1.2\"}\nlock: [tls.min_version]\npolicy:\n  vip_prefixes: [\"2001:db8::/32\", 192.0.2.0/24]\n")
	write("nodes/lb1.yaml", "router_id: 198.51.100.11\nasn: 65000\n")
	for t := range teams {
		team := fmt.Sprintf("team%03d", t)
		write(team+"/defaults.yaml", fmt.Sprintf("defaults:\n  owner: %s\n  tls: on\n  backend: {group: %s_web, software: apache2}\npolicy:\n  vip_prefixes: [\"2001:db8:%x::/48\"]\n  backend_groups: [%s_*]\n", team, team, t+1, team))
		fmt.Fprintf(&inv, "    %s_web:\n      hosts:\n", team)
		for h := range 3 {
			fmt.Fprintf(&inv, "        %s-web%d: {ansible_host: 203.0.113.%d}\n", team, h, (t*3+h)%250+1)
		}
		fmt.Fprintf(&inv, "    %s_app:\n      hosts:\n        app.%s.bench.example:\n", team, team)
		fmt.Fprintf(&zone, "app.%s IN A 203.0.113.%d\n", team, t%250+1)
		for i := range per {
			name := fmt.Sprintf("s%03d", i)
			fqdn := fmt.Sprintf("%s.%s.bench.example", name, team)
			var vip int
			var svc string
			if i%10 == 9 { // tcp, own VIP
				vip = 0x100 + i
				svc = fmt.Sprintf("fqdn: %s\nmode: tcp\nlisteners: [%d]\ntls: off\nbackend:\n  group: %s_app\n  software: generic\n  proxy: v2\n", fqdn, 9000+i, team)
			} else {
				vip = i / 10
				svc = fmt.Sprintf("fqdn: %s\naliases: [www.%s]\nbackend:\n  check: {path: /health}\n", fqdn, fqdn)
			}
			write(filepath.Join(team, name+".yaml"), svc)
			fmt.Fprintf(&zone, "%s.%s IN AAAA 2001:db8:%x::%x\n", name, team, t+1, vip+1)
			if i%10 != 9 { // the alias leads to the VIP too
				fmt.Fprintf(&zone, "www.%s.%s IN AAAA 2001:db8:%x::%x\n", name, team, t+1, vip+1)
			}
		}
	}
	write("bench.zone", zone.String())
	write("inventory.yaml", inv.String())
	return dir
}

func benchResolve(b *testing.B, n int) {
	dir := genTree(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		site, err := Resolve(context.Background(), dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(site.Services) != n {
			b.Fatalf("got %d services, want %d", len(site.Services), n)
		}
	}
}

func BenchmarkResolve1k(b *testing.B)  { benchResolve(b, 1000) }
func BenchmarkResolve5k(b *testing.B)  { benchResolve(b, 5000) }
func BenchmarkResolve10k(b *testing.B) { benchResolve(b, 10000) }
