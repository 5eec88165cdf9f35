package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckDNSDownOnce: lbctl check with the site's DNS server down (a
// loopback port that refuses) prints one problem naming the server, at
// site.yaml's dns line, not one "connection refused" per name.
func TestCheckDNSDownOnce(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := c.LocalAddr().String()
	c.Close()
	tree := campusCopy(t)
	site := filepath.Join(tree, "site.yaml")
	b, _ := os.ReadFile(site)
	os.WriteFile(site, []byte(strings.Replace(string(b), "zone: campus.zone", "dns: "+server, 1)), 0o644)
	line := strings.Count(string(b)[:strings.Index(string(b), "zone: campus.zone")], "\n") + 1
	_, stderr, code := run(t, "check", tree)
	if code != 1 || strings.Count(stderr, "connection refused") != 1 || !strings.Contains(stderr, fmt.Sprintf("%s:%d:1: DNS server %s unreachable (connection refused): ", site, line, server)) ||
		!strings.Contains(stderr, "1 problem found") {
		t.Errorf("check (exit %d):\n%s", code, stderr)
	}
}
