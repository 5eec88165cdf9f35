package archive

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

// syntheticSite is a resolved model of n services spread over n/50 VIPs:
// the size of the 10,000-service tree's resolved.json.
func syntheticSite(n int) *model.Site {
	s := &model.Site{FormatVersion: model.FormatVersion, Name: "bench"}
	vips := n / 50
	for v := 0; v < vips; v++ {
		a4 := fmt.Sprintf("198.51.%d.%d", 100+v/250, 1+v%250)
		s.VIPs = append(s.VIPs, model.VIP{Name: a4, Addresses: []netip.Addr{netip.MustParseAddr(a4), netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", v/250, 1+v%250))},
			Ports: []model.Port{{Port: 80, Mode: "http"}, {Port: 443, Mode: "http", TLS: true}}})
	}
	for i := 0; i < n; i++ {
		v := &s.VIPs[i%vips]
		name := fmt.Sprintf("web/dept%03d/site%05d", i%173, i)
		var servers []model.Server
		for k := 0; k < 3; k++ {
			servers = append(servers, model.Server{Name: fmt.Sprintf("web%05d-%d.backend.example.org", i, k), Address: netip.MustParseAddr(fmt.Sprintf("203.0.%d.%d", (i*3+k)/250%256, 1+(i*3+k)%250))})
		}
		s.Services = append(s.Services, model.Service{
			Name: name, Source: name + ".yaml", FQDN: fmt.Sprintf("site%05d.dept%03d.example.org", i, i%173), Mode: "http",
			VIP: v.Name, Addresses: v.Addresses,
			Listeners: []model.Listener{{Port: 80, IPv4: true, IPv6: true, Action: "redirect-https"}, {Port: 443, IPv4: true, IPv6: true, TLS: true, Action: "serve", BackendPort: 8080}},
			TLS:       &model.TLS{Certificate: fmt.Sprintf("site%05d", i), MinVersion: "1.2", CipherProfile: "intermediate", HSTSMaxAge: 31536000},
			Backend: model.Backend{Servers: servers, Port: 8080, Software: "apache2", Balance: "roundrobin", Proxy: "none", ForwardFor: true, MinUp: 1,
				Check: model.Check{Type: "http", Method: "GET", Path: "/healthz", Host: fmt.Sprintf("site%05d.example.org", i), IntervalMS: 2000, Rise: 2, Fall: 3}},
			AllowedSources: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 256)}), 32)},
			Timeouts:       model.Timeouts{ConnectMS: 5000, ClientMS: 30000, ServerMS: 30000},
			Owner:          fmt.Sprintf("team%03d", i%173), Contacts: []string{fmt.Sprintf("team%03d@example.org", i%173)},
		})
		v.Services = append(v.Services, name)
	}
	for k := 0; k < 4; k++ {
		s.Nodes = append(s.Nodes, model.Node{Hostname: fmt.Sprintf("lb%d", k+1), RouterID: netip.AddrFrom4([4]byte{198, 51, 100, byte(200 + k)}), ASN: 65001, VIPInterface: "lo"})
	}
	return s
}

// benchFiles is the 10,000-service payload: resolved.json, one HAProxy
// config per VIP (200 of about 20 KB) and the node profiles.
func benchFiles(tb testing.TB) []File {
	site := syntheticSite(10_000)
	resolved, err := model.Encode(site)
	if err != nil {
		tb.Fatal(err)
	}
	files := []File{{Path: ResolvedFile, Data: resolved}}
	for _, v := range site.VIPs {
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "global\n  master-worker\n  stats socket /run/lbctl/vips/%s/admin.sock mode 600 level admin\n\n", v.Name)
		fmt.Fprintf(&cfg, "frontend https\n  bind %s:443 ssl crt /etc/lbctl/certs/\n", v.Addresses[0])
		for _, name := range v.Services {
			svc := site.Service(name)
			fmt.Fprintf(&cfg, "  use_backend %s if { req.hdr(host) -i %s }\n", strings.ReplaceAll(name, "/", "_"), svc.FQDN)
		}
		for _, name := range v.Services {
			svc := site.Service(name)
			fmt.Fprintf(&cfg, "\nbackend %s\n  option httpchk GET /healthz\n  http-check send hdr Host %s\n", strings.ReplaceAll(name, "/", "_"), svc.FQDN)
			for _, srv := range svc.Backend.Servers {
				fmt.Fprintf(&cfg, "  server %s %s:8080 check inter 2000 rise 2 fall 3\n", srv.Name, srv.Address)
			}
		}
		files = append(files, File{Path: "render/haproxy/" + v.Name + ".cfg", Data: []byte(cfg.String())})
	}
	for _, n := range site.Nodes {
		files = append(files, File{Path: "nodes/" + n.Hostname + ".json", Data: []byte(fmt.Sprintf(`{"hostname":%q}`+"\n", n.Hostname))})
	}
	return files
}

func payloadSize(files []File) (total int64) {
	for _, f := range files {
		total += int64(len(f.Data))
	}
	return total
}

// BenchmarkWriteRead measures build+sign (Write) and verify+read (Read) of
// the 10,000-service payload, and `tar czf` of the same files, the floor.
func BenchmarkWriteRead(b *testing.B) {
	files := benchFiles(b)
	m := Manifest{Serial: 1, Created: testCreated}
	var bundle bytes.Buffer
	if _, err := Write(&bundle, m, files, keyA.priv); err != nil {
		b.Fatal(err)
	}
	b.Logf("payload: %d files, %d bytes (resolved.json %d bytes); bundle %d bytes",
		len(files), payloadSize(files), len(files[0].Data), bundle.Len())

	b.Run("build+sign", func(b *testing.B) {
		b.SetBytes(payloadSize(files))
		var out bytes.Buffer
		for i := 0; i < b.N; i++ {
			out.Reset()
			if _, err := Write(&out, m, files, keyA.priv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify+read", func(b *testing.B) {
		b.SetBytes(payloadSize(files))
		trust := testTrust()
		for i := 0; i < b.N; i++ {
			if _, err := Read(bytes.NewReader(bundle.Bytes()), trust, testNow, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tar-czf", func(b *testing.B) {
		tarBin, err := exec.LookPath("tar")
		if err != nil {
			b.Skip("needs tar")
		}
		dir := b.TempDir()
		src := filepath.Join(dir, "src")
		for _, f := range files {
			p := filepath.Join(src, filepath.FromSlash(f.Path))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(payloadSize(files))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(tarBin, "czf", filepath.Join(dir, "out.tar.gz"), "-C", src, ".")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("tar czf: %v\n%s", err, out)
			}
		}
	})
}
