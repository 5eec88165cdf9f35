package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatusAllow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lbctl.yaml")
	os.WriteFile(p, []byte("agent:\n  status_allow: [192.0.2.0/24, \"2001:db8::/32\"]\n"), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	if len(c.Agent.StatusAllow) != 2 || c.Agent.StatusAllow[0] != want[0] || c.Agent.StatusAllow[1] != want[1] {
		t.Fatalf("status_allow %v", c.Agent.StatusAllow)
	}
	os.WriteFile(p, []byte("agent:\n  status_allow: [192.0.2.0/24, nonsense]\n"), 0o644)
	_, err = Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("bad prefix: %v", err)
	}
	t.Log(err)
}
