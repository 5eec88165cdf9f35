package agent

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/node/release"
)

// fakeAdmin is a VIP's HAProxy admin socket answering "show stat" with one
// server whose status and check_status the test sets.
type fakeAdmin struct {
	mu                  sync.Mutex
	status, checkStatus string
}

func (f *fakeAdmin) set(status, check string) {
	f.mu.Lock()
	f.status, f.checkStatus = status, check
	f.mu.Unlock()
}

func (f *fakeAdmin) serve(t *testing.T, path string) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(c).ReadString('\n')
			f.mu.Lock()
			out := "# pxname,svname,status,check_status\nbe,s1," + f.status + "," + f.checkStatus + "\n"
			f.mu.Unlock()
			_, _ = c.Write([]byte(out))
			c.Close()
		}
	}()
}

// TestReloadINIKeepsDecision: right after a reload HAProxy shows its
// servers UP with check_status INI until their first check ran. The agent
// must keep its previous decision then, neither withdrawing a healthy VIP
// nor announcing a withdrawn one, while a server that is really down still
// withdraws it.
func TestReloadINIKeepsDecision(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	ln, addr := serve(t)
	defer ln.Close()
	vip := health.VIP{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Probes:   []health.Probe{{Kind: health.ProbeTCP, Addr: addr}},
		Backends: []health.Backend{{Name: "be", MinUp: 1}}}
	store.WriteAnnounceable(health.Announceable{VIPs: []health.VIP{vip}})
	admin := &fakeAdmin{status: "UP", checkStatus: "L7OK"}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	admin.serve(t, sock)
	ann := &fakeAnnouncer{ch: make(chan []netip.Prefix, 100)}
	a := New(Config{Store: store, Announcer: ann,
		Deps:     health.Deps{Backends: Stats{Socket: func(string) string { return sock }}},
		Interval: 10 * time.Millisecond, FastInterval: 5 * time.Millisecond, Rise: 2, Fall: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}
	waitFor(t, "VIP announced", func() bool { return slices.Equal(ann.last(), want) })

	// stays waits for ten more evaluations (five times Fall and Rise) and
	// checks that the VIP kept its state.
	stays := func(what string, announced bool) {
		t.Helper()
		n := a.evaluations("a")
		waitFor(t, what+": ten evaluations", func() bool { return a.evaluations("a") >= n+10 })
		st := a.Status().VIPs[0]
		if st.Announced != announced || slices.Equal(ann.last(), want) != announced {
			t.Fatalf("%s: VIP announced %v (routes %v), want %v; status %+v", what, st.Announced, ann.last(), announced, st)
		}
	}
	// A reload: the server shows INI, then "* INI" while its first check
	// runs, then passes.
	admin.set("UP", "INI")
	stays("healthy VIP, server INI after a reload", true)
	admin.set("UP", "* INI")
	stays("healthy VIP, first check under way", true)
	admin.set("UP", "L7OK")
	if tr := a.Status().VIPs[0].Transitions; tr != 1 {
		t.Fatalf("VIP flapped over the reload: %d transitions", tr)
	}

	// A server really down still withdraws the VIP, and INI does not bring
	// it back: only passing checks do.
	admin.set("DOWN", "L4CON")
	waitFor(t, "VIP withdrawn with its server down", func() bool { return len(ann.last()) == 0 })
	admin.set("UP", "INI")
	stays("withdrawn VIP, server INI", false)
	admin.set("UP", "L4OK")
	waitFor(t, "VIP announced again", func() bool { return slices.Equal(ann.last(), want) })
}
