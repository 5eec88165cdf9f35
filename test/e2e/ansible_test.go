package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/lbctl/lbctl/bundle/render/haproxy"
	haproxyrt "github.com/lbctl/lbctl/health/haproxy"
	"github.com/lbctl/lbctl/internal/doccmd"
	"github.com/lbctl/lbctl/test/testbed"
)

// TestAnsibleRollout runs the shipped Ansible role (packaging/ansible) with
// Debian's ansible-playbook against the sandbox's two LB nodes, in one
// bring-up, through the commands of docs/deploy.md: its `ansible` blocks
// run here with the sandbox's inventory as inventory.yml, its `node` blocks
// on lb1, in the guide's order, each followed by a check of its outcome:
// setup.yml writes lbctl.yaml with the site; the certificate copy lands
// with its owner and mode; rollout.yml rolls a good bundle out to both
// nodes one at a time (both on the new serial, every VIP routed through
// both again); server.yml drains a backend server in both nodes' HAProxy
// and enables it again. Then a bundle whose new VIP never gets healthy,
// rolled out the same way with a drain before each install, stops at lb1,
// which rolls back and is announced again, while lb2 is never touched.
//
// Ansible reaches the nodes through a test-only connection plugin
// (testdata/ansible/connection_plugins/lbctl_nsenter.py) that enters each
// node's namespaces as nsenter does: every module, copy and command of the
// role runs inside the node as it would over ssh on a real one. The nodes
// run no sshd, and one would need keys, host keys and a port per node for
// no more truth about the role.
func TestAnsibleRollout(t *testing.T) {
	skipUnlessSandbox(t)
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("needs ansible-playbook (Debian's ansible-core: scripts/deps.sh ansible-core; make test installs it)")
	}
	md, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := doccmd.Parse(md)
	if err != nil {
		t.Fatalf("docs/deploy.md: %v", err)
	}
	sb := setUp(t)
	an := newAnsible(t, sb)
	an.prepareGuide(t)
	ran := 0
	for _, b := range blocks {
		if len(b.Tags) == 0 || (b.Tags[0] != "ansible" && b.Tags[0] != "node") {
			continue
		}
		for _, c := range b.Commands {
			if b.Tags[0] == "node" {
				out, err := sb.s.NodeRun(t.Context(), "lb1", nil, "/bin/sh", "-c", c.Text)
				if err != nil {
					t.Fatalf("docs/deploy.md:%d on lb1: %s: %v\n%s", c.Line, c.Text, err, out)
				}
				t.Logf("docs/deploy.md:%d on lb1: %s\n%s", c.Line, c.Text, headLines(string(out), 12))
			} else {
				an.guideCommand(t, c)
			}
			ran++
		}
	}
	if ran < 10 {
		t.Fatalf("ran only %d commands of docs/deploy.md", ran)
	}

	// A bundle whose new VIP never gets healthy, rolled out with a drain
	// before each install: lb1 rolls it back and is announced again, the
	// play stops there, lb2 is never touched.
	an.bundle(t, ghostTree(t), 500)
	out, err := an.shell(t, "ansible-playbook -i inventory.yml rollout.yml -e lbctl_bundle=campus-500.bundle -e lbctl_drain_before=true")
	if err == nil {
		t.Fatalf("the rollout of a bundle that never gets healthy succeeded:\n%s", out)
	}
	if !strings.Contains(out, "health gate") || strings.Contains(out, "ok: [lb2]") || strings.Contains(out, "changed: [lb2]") {
		t.Errorf("the failed rollout did not stop at lb1's health gate before lb2:\n%s", out)
	}
	st1, st2 := sb.status(t, "lb1"), sb.status(t, "lb2")
	if st1.Serial != 400 || st1.Last == nil || st1.Last.To != 500 || st1.Last.Result != "rolled-back" {
		t.Errorf("lb1 after the failed rollout: serial %d, last install %+v; want 400 and 500 rolled back", st1.Serial, st1.Last)
	}
	if st2.Serial != 400 || st2.Last == nil || st2.Last.To != 400 || st2.Last.Result != "committed" {
		t.Errorf("lb2 after the failed rollout: serial %d, last install %+v; want 400, untouched", st2.Serial, st2.Last)
	}
	if !strings.Contains(out, "Withdraw the node's routes before the install] ***") || !strings.Contains(out, "Announce the node's routes again after the failed install] ***") {
		t.Errorf("the failed rollout did not drain lb1 before its install and undrain it after:\n%s", out)
	}
	an.waitAnnounced(t, "lb1")
}

// waitAnnounced waits until node announces every VIP again, none drained
// (a 30 s hang guard).
func (an *ansible) waitAnnounced(t *testing.T, node string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := an.sb.status(t, node)
		var out []string
		for _, v := range st.VIPs {
			if v.Drained || !v.Announced {
				out = append(out, v.Name)
			}
		}
		if len(out) == 0 && len(st.VIPs) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: VIPs %v still drained or not announced 30s after the failed rollout", node, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// guideSerial is the serial of the bundle the guide's commands roll out
// ($S in docs/deploy.md).
const guideSerial = 400

// prepareGuide makes the scratch directory the guide's ansible commands
// run in: the role's playbooks and roles, the sandbox's inventory, the
// bundle campus-$S.bundle (examples/campus with one change) and the
// certificate the guide copies, taken from the node.
func (an *ansible) prepareGuide(t *testing.T) {
	t.Helper()
	for _, f := range []string{"setup.yml", "rollout.yml", "server.yml", "roles"} {
		if err := os.Symlink(filepath.Join(an.dir, f), filepath.Join(an.work, f)); err != nil {
			t.Fatal(err)
		}
	}
	tree := copyTree(t, filepath.Join(t.TempDir(), "campus"))
	wiki := filepath.Join(tree, "web", "wiki.yaml")
	src, err := os.ReadFile(wiki)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wiki, bytes.Replace(src, []byte("balance: source"), []byte("balance: leastconn"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	an.bundle(t, tree, guideSerial)
	p, err := an.sb.s.NodePath("lb1", "/etc/lbctl/certs/wildcard.campus.example.pem")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(an.work, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(an.work, "certs", "wildcard.campus.example.pem"), pem, 0o600); err != nil {
		t.Fatal(err)
	}
}

// guideCommand runs one ansible command of the guide and checks its
// outcome; a command the test has no check for fails it, so a new step in
// the guide gets one.
func (an *ansible) guideCommand(t *testing.T, c doccmd.Command) {
	t.Helper()
	out, err := an.shell(t, c.Text)
	if err != nil {
		t.Fatalf("docs/deploy.md:%d: %s: %v\n%s", c.Line, c.Text, err, out)
	}
	switch {
	case strings.Contains(c.Text, " setup.yml"):
		an.checkSetup(t)
	case strings.Contains(c.Text, "ansible.builtin.copy") && strings.Contains(c.Text, "/etc/lbctl/certs/"):
		an.checkCertificate(t, "wildcard.campus.example")
	case strings.Contains(c.Text, " rollout.yml"):
		an.checkRolledOut(t, guideSerial)
	case strings.Contains(c.Text, "lbctl_server_state=drain"):
		an.wantServerState(t, "typo3-web2", func(s string) bool { return s == "DRAIN" }, "DRAIN")
	case strings.Contains(c.Text, "lbctl_server_state=enable"):
		an.wantServerState(t, "typo3-web2", func(s string) bool { return strings.HasPrefix(s, "UP") }, "UP")
	default:
		t.Fatalf("docs/deploy.md:%d: %s: TestAnsibleRollout has no check of this command's outcome: add one", c.Line, c.Text)
	}
}

// checkSetup: lbctl.yaml names the site on both nodes, and the nodes say so.
func (an *ansible) checkSetup(t *testing.T) {
	t.Helper()
	for _, n := range an.sb.s.Nodes {
		p, err := an.sb.s.NodePath(n.Name, testbed.NodeConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || !strings.Contains(string(b), "site: \"campus\"") {
			t.Fatalf("%s: lbctl.yaml after setup.yml (%v):\n%s", n.Name, err, b)
		}
		if st := an.sb.status(t, n.Name); st.Site != "campus" || len(st.Unhealthy()) > 0 {
			t.Errorf("%s after setup.yml: site %q, unhealthy %v", n.Name, st.Site, st.Unhealthy())
		}
	}
}

// checkCertificate: the copied certificate is root:haproxy 0640 on both
// nodes.
func (an *ansible) checkCertificate(t *testing.T, name string) {
	t.Helper()
	g, err := user.LookupGroup("haproxy")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range an.sb.s.Nodes {
		p, err := an.sb.s.NodePath(n.Name, "/etc/lbctl/certs/"+name+".pem")
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || st.Uid != 0 || fmt.Sprint(st.Gid) != g.Gid {
			t.Errorf("%s: %s is %v %d:%d, want 0640 root:haproxy", n.Name, p, fi.Mode().Perm(), st.Uid, st.Gid)
		}
	}
}

// checkRolledOut: both nodes run serial with every VIP healthy, and the
// router has a next hop through each node for every VIP again.
func (an *ansible) checkRolledOut(t *testing.T, serial uint64) {
	t.Helper()
	for _, n := range an.sb.s.Nodes {
		st := an.sb.status(t, n.Name)
		if st.Serial != serial || st.Site != "campus" || len(st.Unhealthy()) > 0 {
			t.Errorf("%s after the rollout: serial %d, site %q, unhealthy %v", n.Name, st.Serial, st.Site, st.Unhealthy())
		}
	}
	if err := an.sb.s.WaitECMP(t.Context(), an.sb.prefixes, 60*time.Second); err != nil {
		t.Fatalf("after the rollout: %v", err)
	}
}

// ansible runs the shipped playbooks against the sandbox's nodes.
type ansible struct {
	sb        *sandbox
	dir       string // packaging/ansible
	work      string
	inventory string
	env       []string
}

func newAnsible(t *testing.T, sb *sandbox) *ansible {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	plugins, err := filepath.Abs("testdata/ansible/connection_plugins")
	if err != nil {
		t.Fatal(err)
	}
	an := &ansible{sb: sb, dir: filepath.Join(root, "packaging", "ansible"), work: t.TempDir()}
	an.env = append(os.Environ(), "HOME="+an.work, "ANSIBLE_HOME="+filepath.Join(an.work, ".ansible"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(an.work, "tmp"), "ANSIBLE_CONNECTION_PLUGINS="+plugins,
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0", "ANSIBLE_RETRY_FILES_ENABLED=0")
	// JSON is YAML: the guide's inventory.yml.
	an.inventory = filepath.Join(an.work, "inventory.yml")
	if err := os.WriteFile(an.inventory, an.inventoryJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return an
}

// inventoryJSON is the sandbox's inventory: group lbctl_nodes with lb1 and
// lb2, reached through their systemd's namespaces, and the role's
// variables (the site, the trusted key, the testbed's lbctl.yaml settings).
func (an *ansible) inventoryJSON(t *testing.T) []byte {
	t.Helper()
	hosts := map[string]any{}
	var settings map[string]any
	for _, n := range an.sb.s.Nodes {
		hosts[n.Name] = map[string]any{"lbctl_nsenter_pid": n.PID, "lbctl_node": n.Hostname}
		if err := yaml.Unmarshal([]byte(testbed.NodeConfig(n.Hostname, 20*time.Second)), &settings); err != nil {
			t.Fatal(err)
		}
		if settings["node"] != n.Hostname {
			t.Fatalf("testbed node %s is %v in its lbctl.yaml", n.Name, settings["node"])
		}
	}
	delete(settings, "node")
	inv := map[string]any{"all": map[string]any{"children": map[string]any{"lbctl_nodes": map[string]any{
		"hosts": hosts,
		"vars": map[string]any{
			"ansible_connection":         "lbctl_nsenter",
			"ansible_python_interpreter": "/usr/bin/python3",
			"ansible_remote_tmp":         "/var/tmp/.ansible-tmp",
			"lbctl_site":                 "campus",
			"lbctl_trusted_keys":         []string{an.sb.pubkey},
			"lbctl_settings":             settings,
			"lbctl_health_delay":         1,
		},
	}}}}
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bundle writes campus-SERIAL.bundle of tree into the scratch directory.
func (an *ansible) bundle(t *testing.T, tree string, serial int) {
	t.Helper()
	p := filepath.Join(an.work, fmt.Sprintf("campus-%d.bundle", serial))
	if err := os.WriteFile(p, an.sb.bundle(t, tree, serial), 0o644); err != nil {
		t.Fatal(err)
	}
}

// shell runs a command of the guide with sh in the scratch directory, $S
// set to the guide's serial.
func (an *ansible) shell(t *testing.T, command string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "/bin/sh", "-c", command)
	cmd.Env, cmd.Dir = append(an.env, fmt.Sprintf("S=%d", guideSerial)), an.work
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s: %v in %v", command, err, time.Since(start).Round(time.Millisecond))
	return string(out), err
}

// wantServerState reads every typo3 backend row of server from each
// node's HAProxy admin socket until all satisfy ok (a 20 s hang guard).
func (an *ansible) wantServerState(t *testing.T, server string, ok func(status string) bool, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range an.sb.s.Nodes {
		sock, err := an.sb.s.NodePath(n.Name, haproxy.AdminSocket("", typo3VIP.String()))
		if err != nil {
			t.Fatal(err)
		}
		for {
			rows, err := haproxyrt.Stats(t.Context(), sock)
			var states []string
			for _, r := range rows {
				if strings.HasPrefix(r.Name, server) {
					states = append(states, r.Status)
				}
			}
			if err == nil && len(states) > 0 && !slices.ContainsFunc(states, func(s string) bool { return !ok(s) }) {
				t.Logf("%s: %s is %v in HAProxy", n.Name, server, states)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s is %v in HAProxy (%v), want %s", n.Name, server, states, err, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// headLines is the first n lines of s.
func headLines(s string, n int) string {
	l := strings.SplitAfter(s, "\n")
	return strings.Join(l[:min(n, len(l))], "")
}
