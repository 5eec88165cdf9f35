package intent

import (
	"strings"
	"testing"
)

func TestServerSettings(t *testing.T) {
	site := one(t, "fqdn: web.example.org\nbackend:\n  group: web\n  servers:\n    - {name: web1, weight: 50}\n    - {name: web2, disabled: true, weight: 0}\n")
	s := site.Service("svc")
	if s == nil {
		t.Fatalf("no service svc in %+v", site.Services)
	}
	srv := s.Backend.Servers
	if len(srv) != 2 || srv[0].Weight == nil || *srv[0].Weight != 50 || srv[0].Disabled ||
		srv[1].Weight == nil || *srv[1].Weight != 0 || !srv[1].Disabled {
		t.Fatalf("servers %+v", srv)
	}

	for _, c := range []struct{ svc, want string }{
		{"fqdn: web.example.org\nbackend:\n  group: web\n  servers:\n    - {name: web9}\n",
			`svc.yaml:5:14: backend.servers: no server "web9" in the backend (servers: web1 web2)`},
		{"fqdn: web.example.org\nbackend:\n  group: web\n  min_up: 2\n  servers:\n    - {name: web1, disabled: true}\n",
			"backend.min_up 2 exceeds the 1 servers not disabled"},
		{"fqdn: web.example.org\nbackend:\n  group: web\n  servers:\n    - {name: web1, weight: 300}\n",
			"svc.yaml:5:28: backend.servers[0].weight: 300 out of range 0..256"},
	} {
		_, err := resolveFiles(t, testDNS, map[string]string{"svc.yaml": c.svc})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.svc, err, c.want)
		}
	}
}
