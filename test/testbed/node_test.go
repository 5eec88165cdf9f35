package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/node/config"
)

// The node configuration the testbed writes is one lbctl accepts (unknown
// keys are errors there) with the values the sandbox relies on.
func TestNodeConfigLoads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lbctl.yaml")
	if err := os.WriteFile(p, []byte(NodeConfig("lb1", 20*time.Second)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node != "lb1" || time.Duration(c.GateTimeout) != 20*time.Second || c.Bird.Unit != "bird.service" ||
		c.Bird.Socket != NodeBirdSocket || c.CertDir != "/etc/lbctl/certs" {
		t.Errorf("config %+v", c)
	}
	if m := c.HAProxy.MaxConn; m != 0 && 2*m+1000 > 1<<20 {
		t.Errorf("maxconn %d does not fit any file descriptor limit it was lowered for", m)
	}
	if !strings.Contains(NodeConfig("lb2", 0), "gate_timeout: 30s") {
		t.Errorf("default gate timeout: %s", NodeConfig("lb2", 0))
	}
}

// The node's init script keeps the host safe: everything it mounts is in
// its own mount namespace (made private first), host-touching units are
// masked, and BIRD's unit is not, since the installer starts it.
func TestNodeInitScript(t *testing.T) {
	s := nodeInitScript("lb1", "lbctl-testbed-lb1", nodeMask)
	lines := strings.Split(s, "\n")
	if lines[1] != "mount --make-rprivate /" {
		t.Errorf("the first mount must make / private, got %q", lines[1])
	}
	for _, want := range []string{
		"mount -t tmpfs -o mode=0755,size=1g tmpfs /run",
		"mount -o remount,bind,ro /sys",
		"mount --no-canonicalize --bind /proc/self/fd/3 /etc/lbctl/certs",
		"ln -sf /dev/null /run/systemd/system/'systemd-sysctl.service'",
		"ln -sf /dev/null /run/systemd/system/'haproxy.service'",
		"hostname 'lb1'",
		"exec /lib/systemd/systemd --system --unit=basic.target",
	} {
		if !strings.Contains(s, want+"\n") {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "bird.service") {
		t.Errorf("bird.service is masked:\n%s", s)
	}
	// The certificate directory is opened before any tmpfs can hide it.
	if i, j := strings.Index(s, `exec 3< "$1"`), strings.Index(s, "mount -t tmpfs"); i < 0 || i > j {
		t.Errorf("certificate directory opened after a tmpfs mount:\n%s", s)
	}
}

func TestParseAnswer(t *testing.T) {
	f := ParseAnswer("220 backend=mx1 port=25 proxy-src=198.51.100.130:4711 src=203.0.113.1:3333\r\n")
	if f["backend"] != "mx1" || f["proxy-src"] != "198.51.100.130:4711" || f["src"] != "203.0.113.1:3333" {
		t.Errorf("fields %v", f)
	}
}
