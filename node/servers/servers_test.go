package servers

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWant(t *testing.T) {
	var f File
	now := time.Unix(1e9, 0)
	f.Set("web2", "", Drain, now)
	f.Set("web2", "192.0.2.10", Maint, now)
	f.Set("web1", "192.0.2.11", Drain, now)
	for _, c := range []struct{ vip, srv, want string }{
		{"192.0.2.10", "web2", Maint}, {"192.0.2.11", "web2", Drain}, {"192.0.2.11", "web1", Drain}, {"192.0.2.10", "web1", ""},
	} {
		if got := f.Want(c.vip, c.srv); got != c.want {
			t.Errorf("Want(%s, %s) = %q, want %q", c.vip, c.srv, got, c.want)
		}
	}
	f.Set("typo3-web2", "", Drain, now)
	if got := f.Want("192.0.2.10", "typo3-web2.campus.example"); got != Drain {
		t.Errorf("short name: %q", got)
	}
	if got := f.Want("192.0.2.10", "typo3-web20.campus.example"); got != "" {
		t.Errorf("typo3-web2 matched typo3-web20: %q", got)
	}
	f.Remove("typo3-web2", "")
	f.Remove("web2", "")
	if len(f.Entries) != 1 || f.Entries[0].Server != "web1" {
		t.Errorf("after Remove: %+v", f.Entries)
	}
}

func TestReadRefusesUnknownState(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{"servers":[{"server":"web1","state":"off"}]}`), 0o600)
	_, err := Read(dir)
	if err == nil || !strings.Contains(err.Error(), `servers[0] (web1): state "off"`) {
		t.Fatalf("err %v", err)
	}
}

// startHAProxy runs a real HAProxy with two backends that both have a
// server web2, and a server the configuration disables.
func startHAProxy(t *testing.T, dir string) (socket string, restart func()) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skipf("needs haproxy (make deps): %v", err)
	}
	socket = filepath.Join(dir, "admin.sock")
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
backend web.a:80
    server web1 192.0.2.1:80
    server web2 192.0.2.2:80
    server web3 192.0.2.3:80 disabled
backend web.b:443
    server web2 192.0.2.2:443
`, socket)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	start := func() {
		cmd = exec.Command("haproxy", "-db", "-f", path)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := Show(context.Background(), socket); err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("haproxy did not answer on its socket")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.Remove(socket) }
	start()
	t.Cleanup(stop)
	return socket, func() { stop(); start() }
}

func states(t *testing.T, socket string) string {
	t.Helper()
	rs, err := Show(context.Background(), socket)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Backend+"/"+r.Name+"="+r.State())
	}
	return strings.Join(out, " ")
}

// Against a real HAProxy: drain sets the server in every backend using it,
// a restarted HAProxy gets it back from the reconciler, maint and drain
// swap, enable makes it ready, and a server the configuration disables is
// never touched.
func TestApplyAndReconcile(t *testing.T) {
	dir := t.TempDir()
	socket, restart := startHAProxy(t, dir)
	ctx := context.Background()
	const vip = "192.0.2.10"
	var f File
	f.Set("web2", "", Drain, time.Now())
	f.Set("web3", "", Drain, time.Now())
	if err := Write(dir, f); err != nil {
		t.Fatal(err)
	}
	ch, err := Apply(ctx, socket, vip, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 {
		t.Errorf("changes %v, want web2 in both backends", ch)
	}
	want := "web.a:80/web1=ready web.a:80/web2=drain web.a:80/web3=disabled web.b:443/web2=drain"
	if got := states(t, socket); got != want {
		t.Fatalf("after drain:\n got %s\nwant %s", got, want)
	}

	restart()
	if got := states(t, socket); !strings.Contains(got, "web.a:80/web2=ready") {
		t.Fatalf("a restarted HAProxy starts web2 ready; got %s", got)
	}
	r := &Reconciler{Dir: dir, Socket: func(string) string { return socket }, VIPs: func() []string { return []string{vip} }}
	if ch := r.Pass(ctx); len(ch) != 2 {
		t.Errorf("reconciler changes %v", ch)
	}
	if got := states(t, socket); got != want {
		t.Fatalf("after restart and reconcile:\n got %s\nwant %s", got, want)
	}
	if ch := r.Pass(ctx); len(ch) != 0 {
		t.Errorf("a second pass changed %v", ch)
	}

	f.Set("web2", "", Maint, time.Now())
	Write(dir, f)
	r.Pass(ctx)
	if got := states(t, socket); !strings.Contains(got, "web.a:80/web2=maint") {
		t.Fatalf("maint: %s", got)
	}
	f.Set("web2", "", Drain, time.Now())
	Write(dir, f)
	r.Pass(ctx)
	if got := states(t, socket); got != want {
		t.Fatalf("maint -> drain:\n got %s\nwant %s", got, want)
	}

	f.Remove("web2", "")
	Write(dir, f)
	if _, err := Apply(ctx, socket, vip, f, []string{"web2", "web3"}); err != nil {
		t.Fatal(err)
	}
	if got, want := states(t, socket), "web.a:80/web1=ready web.a:80/web2=ready web.a:80/web3=disabled web.b:443/web2=ready"; got != want {
		t.Fatalf("after enable:\n got %s\nwant %s", got, want)
	}
}
