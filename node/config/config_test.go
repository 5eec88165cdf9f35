package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(filepath.Join(dir, "missing.yaml"))
	if err != nil || c.StateDir != "/var/lib/lbctl" || time.Duration(c.DrainTime) != 5*time.Second {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	p := filepath.Join(dir, "lbctl.yaml")
	os.WriteFile(p, []byte("node: lb1\ndrain_time: 2s\nagent:\n  rise: 5\n"), 0o644)
	c, err = Load(p)
	if err != nil || c.Node != "lb1" || time.Duration(c.DrainTime) != 2*time.Second || c.Agent.Rise != 5 {
		t.Fatalf("loaded: %+v %v", c, err)
	}
	os.WriteFile(p, []byte("# every setting commented out\n# node: lb1\n"), 0o644)
	if c, err := Load(p); err != nil || c.StateDir != "/var/lib/lbctl" {
		t.Fatalf("comments only: %+v %v", c, err)
	}
	os.WriteFile(p, []byte("node: lb1\nstate_dri: /x\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "state_dri") || !strings.Contains(err.Error(), p) {
		t.Fatalf("unknown key: %v", err)
	}
	os.WriteFile(p, []byte("haproxy:\n  threads: 2\n"), 0o644)
	if c, err := Load(p); err != nil || c.HAProxy.Threads != 2 {
		t.Fatalf("haproxy.threads: %+v %v", c, err)
	}
	os.WriteFile(p, []byte("site: campus\n"), 0o644)
	if c, err := Load(p); err != nil || c.Site != "campus" {
		t.Fatalf("site: %+v %v", c, err)
	}
	os.WriteFile(p, []byte("site: campus/a\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p+": site: site name \"campus/a\"") {
		t.Fatalf("site campus/a: %v", err)
	}
	os.WriteFile(p, []byte("haproxy:\n  threads: 65\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "haproxy.threads: 65") || !strings.Contains(err.Error(), p) {
		t.Fatalf("haproxy.threads 65: %v", err)
	}
}
