package netnstest

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/test/internal/nsprocs"
)

// TestHarness builds two namespaces with a veth pair in a subtest, checks
// they are real (a TCP round trip over v4 and v6, a process inside), and
// after the subtest's cleanup checks nothing is left.
func TestHarness(t *testing.T) {
	RequireRoot(t)
	var (
		paths  []string
		inodes []uint64
		procs  []*Proc
	)
	t.Run("inside", func(t *testing.T) {
		a := New(t, "harness-a")
		b := New(t, "harness-b")
		paths = append(paths, a.Path, b.Path)
		inodes = append(inodes, a.Inode, b.Inode)
		if a.Inode == b.Inode {
			t.Fatalf("two namespaces share inode %d", a.Inode)
		}
		var self unix.Stat_t
		if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
			t.Fatal(err)
		}
		if self.Ino == a.Inode {
			t.Fatal("namespace is the test's own")
		}

		// lo is up and only lo exists at first.
		if out := a.IP(t, "-o", "link", "show"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "lo:") || !strings.Contains(out, "UP") {
			t.Fatalf("fresh namespace links:\n%s", out)
		}

		l := Veth(t, a, "198.51.100.1/24,2001:db8:1::1/64", b, "198.51.100.2/24,2001:db8:1::2/64")
		if out := b.IP(t, "-o", "addr", "show", "dev", l.B); !strings.Contains(out, "198.51.100.2/24") || !strings.Contains(out, "2001:db8:1::2/64") {
			t.Fatalf("addresses on %s:\n%s", l.B, out)
		}

		// A listener opened in b (via Do) is reachable from a, over both families.
		for _, addr := range []string{"198.51.100.2:7000", "[2001:db8:1::2]:7000"} {
			var ln net.Listener
			if err := b.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
				t.Fatal(err)
			}
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, c.RemoteAddr().String())
				c.Close()
			}()
			var got []byte
			err := a.Do(func() error {
				c, err := net.DialTimeout("tcp", addr, 3*time.Second)
				if err != nil {
					return err
				}
				defer c.Close()
				got, err = io.ReadAll(c)
				return err
			})
			ln.Close()
			if err != nil {
				t.Fatalf("dial %s from %s: %v", addr, a.Name, err)
			}
			if h, _, _ := net.SplitHostPort(string(got)); h != "198.51.100.1" && h != "2001:db8:1::1" {
				t.Fatalf("server saw %q, want a's address", got)
			}
		}
		// A process runs inside a, in a's namespace, and is killed and
		// reaped by cleanup.
		p := a.Start(t, "sleep", "60")
		procs = append(procs, p)
		var st unix.Stat_t
		if err := unix.Stat("/proc/"+strconv.Itoa(p.PID)+"/ns/net", &st); err != nil {
			t.Fatal(err)
		}
		if st.Ino != a.Inode {
			t.Fatalf("process %d in namespace %d, want %d", p.PID, st.Ino, a.Inode)
		}
		if got := nsprocs.PIDsIn(a.Inode); len(got) != 1 || got[0] != p.PID {
			t.Fatalf("PIDsIn = %v, want [%d]", got, p.PID)
		}
		if out := a.Exec(t, "ip", "-o", "addr", "show", "dev", l.A); !strings.Contains(out, "198.51.100.1/24") {
			t.Fatalf("Exec ran outside the namespace:\n%s", out)
		}
		if _, err := a.ExecErr("false"); err == nil {
			t.Fatal("ExecErr(false) succeeded")
		}
	})
	for _, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after cleanup: %v", p, err)
		}
	}
	for _, ino := range inodes {
		if pids := nsprocs.PIDsIn(ino); len(pids) != 0 {
			t.Errorf("processes %v left in namespace %d", pids, ino)
		}
	}
	for _, p := range procs {
		select {
		case <-p.Done():
		default:
			t.Errorf("process %d not reaped", p.PID)
		}
		if err := unix.Kill(p.PID, 0); !errors.Is(err, unix.ESRCH) {
			t.Errorf("process %d still exists: %v", p.PID, err)
		}
	}
	if len(paths) != 2 || len(procs) != 1 {
		t.Fatalf("inside subtest did not run to the end (paths %v, procs %d)", paths, len(procs))
	}
}
