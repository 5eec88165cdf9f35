package validate

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/internal/testcert"
	"github.com/lbctl/lbctl/node/plan"
)

// haproxyAccount is the account of the template unit, which must exist on
// the test machine (the haproxy package creates it); the tests chown files,
// so they need root.
func haproxyAccount(t *testing.T) *Account {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chowns files to the haproxy user")
	}
	name, group := UnitAccount()
	if name != "haproxy" || group != "haproxy" {
		t.Fatalf("template unit runs as %s:%s, want haproxy:haproxy", name, group)
	}
	a, err := LookupAccount(name, group)
	if err != nil {
		t.Skipf("no haproxy user (install haproxy): %v", err)
	}
	return a
}

// worldDir is a fresh directory every user can search (t.TempDir's parent
// is private to root).
func worldDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "lbctl-validate-access-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// kernelCanRead opens path as the account in a child process: the kernel's
// own verdict, to hold CanRead against.
func kernelCanRead(t *testing.T, a *Account, path string) bool {
	t.Helper()
	cmd := exec.Command("head", "-c", "1", "--", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: a.Groups}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("head as %s: %v: %s", a.User, err, out)
	}
	return err == nil
}

// setACL writes an access ACL in the kernel's xattr format (what setfacl
// does); entries must be in the kernel's order.
func setACL(t *testing.T, path string, entries []aclEntry) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	if err := syscall.Setxattr(path, "system.posix_acl_access", b, 0); err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) {
			t.Skipf("%s: file system without POSIX ACLs", path)
		}
		t.Fatal(err)
	}
}

const undefinedID = 0xffffffff

// TestCanRead creates files and directories with various owners, modes and
// ACLs and checks CanRead's verdict and reason, and that the kernel agrees
// when the haproxy user really opens the file.
func TestCanRead(t *testing.T) {
	a := haproxyAccount(t)
	root := worldDir(t)
	uid, gid := int(a.UID), int(a.GID)
	type mk struct {
		path      string // relative to the case's directory; trailing / for a directory
		mode      os.FileMode
		uid, gid  int
		acl       []aclEntry
		symlinkTo string
	}
	for _, tc := range []struct {
		name  string
		make  []mk
		check string
		// want is "" for readable, else a substring of the error ($DIR:
		// the case's directory).
		want string
	}{
		{"world readable", []mk{{path: "x.pem", mode: 0o644}}, "x.pem", ""},
		{"root only", []mk{{path: "x.pem", mode: 0o600}}, "x.pem", "not readable by user haproxy (mode 0600 root:root)"},
		{"group haproxy", []mk{{path: "x.pem", mode: 0o640, gid: gid}}, "x.pem", ""},
		{"owned by haproxy", []mk{{path: "x.pem", mode: 0o400, uid: uid}}, "x.pem", ""},
		{"owner bits decide for the owner", []mk{{path: "x.pem", mode: 0o044, uid: uid}}, "x.pem", "(mode 0044 haproxy:root)"},
		{"group bits decide for a member", []mk{{path: "x.pem", mode: 0o604, gid: gid}}, "x.pem", "(mode 0604 root:haproxy)"},
		{"other group", []mk{{path: "x.pem", mode: 0o640}}, "x.pem", "(mode 0640 root:root)"},
		{"parent not searchable", []mk{{path: "certs/", mode: 0o700}, {path: "certs/x.pem", mode: 0o644}}, "certs/x.pem",
			"directory $DIR/certs not searchable (mode 0700 root:root)"},
		{"parent readable but not searchable", []mk{{path: "certs/", mode: 0o744}, {path: "certs/x.pem", mode: 0o644}}, "certs/x.pem",
			"not searchable (mode 0744 root:root)"},
		{"parent searchable by group haproxy", []mk{{path: "certs/", mode: 0o750, gid: gid}, {path: "certs/x.pem", mode: 0o640, gid: gid}}, "certs/x.pem", ""},
		{"grandparent not searchable", []mk{{path: "a/", mode: 0o700}, {path: "a/b/", mode: 0o755}, {path: "a/b/x.pem", mode: 0o644}}, "a/b/x.pem",
			"/a not searchable (mode 0700 root:root)"},
		{"symlink into a private directory", []mk{{path: "private/", mode: 0o700}, {path: "private/x.pem", mode: 0o644},
			{path: "x.pem", symlinkTo: "private/x.pem"}}, "x.pem", "/private not searchable"},
		{"symlink to a readable file", []mk{{path: "live/", mode: 0o755}, {path: "archive/", mode: 0o750, gid: gid}, {path: "archive/x1.pem", mode: 0o640, gid: gid},
			{path: "live/x.pem", symlinkTo: "../archive/x1.pem"}}, "live/x.pem", ""},
		{"ACL grants haproxy", []mk{{path: "x.pem", mode: 0o640, acl: []aclEntry{
			{aclUserObj, 6, undefinedID}, {aclUser, 4, a.UID}, {aclGroupObj, 0, undefinedID}, {aclMask, 4, undefinedID}, {aclOther, 0, undefinedID}}}},
			"x.pem", ""},
		{"ACL mask takes it back", []mk{{path: "x.pem", mode: 0o600, acl: []aclEntry{
			{aclUserObj, 6, undefinedID}, {aclUser, 4, a.UID}, {aclGroupObj, 0, undefinedID}, {aclMask, 0, undefinedID}, {aclOther, 0, undefinedID}}}},
			"x.pem", "(mode 0600 root:root, ACL)"},
		{"ACL group entry matches and denies: other not consulted", []mk{{path: "x.pem", mode: 0o644, acl: []aclEntry{
			{aclUserObj, 6, undefinedID}, {aclUser, 4, 0}, {aclGroupObj, 0, undefinedID}, {aclGroup, 0, a.GID}, {aclMask, 4, undefinedID}, {aclOther, 4, undefinedID}}}},
			"x.pem", "(mode 0644 root:root, ACL)"},
		{"ACL with an empty mask is ignored (the kernel's shortcut)", []mk{{path: "x.pem", mode: 0o604, acl: []aclEntry{
			{aclUserObj, 6, undefinedID}, {aclGroupObj, 0, undefinedID}, {aclGroup, 0, a.GID}, {aclMask, 0, undefinedID}, {aclOther, 4, undefinedID}}}},
			"x.pem", ""},
		{"ACL on the directory", []mk{{path: "certs/", mode: 0o710, acl: []aclEntry{
			{aclUserObj, 7, undefinedID}, {aclGroupObj, 0, undefinedID}, {aclGroup, 1, a.GID}, {aclMask, 1, undefinedID}, {aclOther, 0, undefinedID}}},
			{path: "certs/x.pem", mode: 0o644}}, "certs/x.pem", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, strings.ReplaceAll(tc.name, ":", ""))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.make {
				p := filepath.Join(dir, m.path)
				var err error
				switch {
				case m.symlinkTo != "":
					err = os.Symlink(m.symlinkTo, p)
				case strings.HasSuffix(m.path, "/"):
					err = os.Mkdir(p, 0o700)
				default:
					err = os.WriteFile(p, []byte("x\n"), 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
				if m.symlinkTo != "" {
					continue
				}
				if err := os.Chown(p, m.uid, m.gid); err != nil {
					t.Fatal(err)
				}
				if m.acl != nil {
					setACL(t, p, m.acl)
				}
			}
			// Modes last (an ACL write sets them too).
			for _, m := range tc.make {
				if m.symlinkTo == "" && m.acl == nil {
					if err := os.Chmod(filepath.Join(dir, m.path), m.mode); err != nil {
						t.Fatal(err)
					}
				}
			}
			p := filepath.Join(dir, tc.check)
			err := a.CanRead(p)
			want := strings.ReplaceAll(tc.want, "$DIR", dir)
			switch {
			case want == "" && err != nil:
				t.Errorf("CanRead(%s) = %v, want readable", p, err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("CanRead(%s) = %v, want error containing %q", p, err, want)
			}
			if k := kernelCanRead(t, a, p); k != (err == nil) {
				t.Errorf("kernel says readable=%v, CanRead says %v", k, err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if err := a.CanRead(filepath.Join(root, "nope.pem")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing file: %v, want fs.ErrNotExist", err)
		}
	})
}

// TestValidateReadable runs Validate on releases whose VIP configs name
// certificates, crt-lists, CA files and OCSP sidecars with various
// permissions, and checks the errors against what HAProxy says when it
// really loads the configuration as the haproxy user.
func TestValidateReadable(t *testing.T) {
	need(t, "haproxy")
	a := haproxyAccount(t)
	root := worldDir(t)
	ca, err := testcert.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := ca.IssueValid("www.campus.example")
	if err != nil {
		t.Fatal(err)
	}
	write := func(p string, data []byte, mode os.FileMode, uid, gid int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	hg := int(a.GID)
	good := filepath.Join(root, "certs", "good.pem")
	write(good, pemData, 0o640, 0, hg)
	secret := filepath.Join(root, "certs", "secret.pem")
	write(secret, pemData, 0o600, 0, 0)
	withOCSP := filepath.Join(root, "certs", "ocsp.pem")
	write(withOCSP, pemData, 0o644, 0, 0)
	write(withOCSP+".ocsp", []byte("x"), 0o600, 0, 0)
	write(filepath.Join(root, "ca.pem"), ca.PEM(), 0o644, 0, 0)
	hidden := filepath.Join(root, "hidden", "in.pem")
	write(hidden, pemData, 0o644, 0, 0)
	if err := os.Chmod(filepath.Dir(hidden), 0o700); err != nil {
		t.Fatal(err)
	}

	vipDir := filepath.Join(root, "vips")
	cfg := func(bind string) string {
		return "global\n  log stdout format raw local0\n" +
			"defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n" +
			"frontend fe\n  bind 127.0.0.1:18443 " + bind + "\n  default_backend be\n" +
			"backend be\n  server s1 203.0.113.5:443 ssl verify required ca-file " + filepath.Join(root, "ca.pem") + "\n"
	}
	crtList := filepath.Join(vipDir, "192.0.2.10", "443.crt-list")
	for _, tc := range []struct {
		name    string
		bind    string
		crtList string
		want    []string
	}{
		{"readable certificate and CA", "ssl crt " + good, "", nil},
		{"root-only certificate", "ssl crt " + secret, "",
			[]string{"vip 192.0.2.10: certificate " + secret + ": not readable by user haproxy (mode 0600 root:root)"}},
		{"crt-list entries", "ssl crt-list " + crtList, good + " www.campus.example\n" + secret + " [ssl-min-ver TLSv1.3] other.campus.example\n",
			[]string{"vip 192.0.2.10: certificate " + secret + ": not readable by user haproxy (mode 0600 root:root)"}},
		{"unreadable OCSP sidecar", "ssl crt " + withOCSP, "",
			[]string{"vip 192.0.2.10: ocsp " + withOCSP + ".ocsp: not readable by user haproxy (mode 0600 root:root)"}},
		{"parent directory", "ssl crt " + hidden, "",
			[]string{"vip 192.0.2.10: certificate " + hidden + ": not readable by user haproxy: directory " + filepath.Dir(hidden) + " not searchable (mode 0700 root:root)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := []plan.File{{Path: "haproxy.cfg", Data: []byte(cfg(tc.bind))}}
			if tc.crtList != "" {
				files = append([]plan.File{{Path: "443.crt-list", Data: []byte(tc.crtList)}}, files...)
			}
			next := &plan.State{VIPs: []plan.VIP{{Name: "192.0.2.10", Files: files}}}
			v := &Validator{VIPDir: vipDir}
			err := v.Validate(context.Background(), &model.Site{}, next, &plan.Plan{})
			if len(tc.want) == 0 && err != nil {
				t.Errorf("Validate: %v, want no error", err)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant %q", err, w)
				}
			}
			// HAProxy itself, loading the config as the haproxy user the
			// way the unit starts it, must agree.
			dir := filepath.Join(vipDir, "192.0.2.10")
			for _, f := range files {
				write(filepath.Join(dir, f.Path), f.Data, 0o644, 0, 0)
			}
			cmd := exec.Command(lookPath("", "haproxy"), "-c", "-f", filepath.Join(dir, "haproxy.cfg"))
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: a.Groups}}
			cmd.Dir = "/"
			out, herr := cmd.CombinedOutput()
			if (herr == nil) != (err == nil) {
				t.Errorf("haproxy -c as haproxy: %v (validate: %v)\n%s", herr, err, out)
			}
		})
	}
}
