//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"testing"
	"unsafe"
)

// The Go decoders rely on the generated layouts; a change in src/probe.c
// that alters them must show up here.
func TestRecordLayout(t *testing.T) {
	if listenRecSize != 48 || eventSize != 48 || unsafe.Sizeof(probeLbWatchKey{}) != 32 {
		t.Fatalf("record sizes %d/%d/%d, want 48/48/32 (C and Go out of step?)",
			listenRecSize, eventSize, unsafe.Sizeof(probeLbWatchKey{}))
	}
}

func TestAddrRoundTrip(t *testing.T) {
	for _, s := range []string{"192.0.2.10:80", "0.0.0.0:443", "[2001:db8::1]:8443", "[::]:1", "[::ffff:192.0.2.1]:80"} {
		ap := netip.MustParseAddrPort(s)
		f, a, p := addrTo(ap)
		got, ok := addrFrom(f, a, p)
		if !ok || got != ap {
			t.Errorf("%s: round trip gave %s (%v)", s, got, ok)
		}
	}
	if f, _, _ := addrTo(netip.MustParseAddrPort("[::ffff:192.0.2.1]:80")); f != afInet6 {
		t.Errorf("v4-mapped IPv6 must stay AF_INET6, got family %d", f)
	}
	if _, ok := addrFrom(1, [16]byte{}, 0); ok {
		t.Error("AF_UNIX accepted")
	}
}

func TestDecodeListenRecs(t *testing.T) {
	var buf []byte
	for _, r := range []probeLbListenRec{
		{Netns: 7, Cookie: 9, Backlog: 2, MaxBacklog: 16, Addr: [16]byte{192, 0, 2, 10}, Family: afInet, Port: 8080},
		{Netns: 7, Cookie: 10, MaxBacklog: 3, Addr: netip.MustParseAddr("2001:db8::10").As16(), Family: afInet6, Port: 443},
		{Family: 1}, // skipped
	} {
		buf = binary.NativeEndian.AppendUint64(buf, r.Netns)
		buf = binary.NativeEndian.AppendUint64(buf, r.Cookie)
		buf = binary.NativeEndian.AppendUint32(buf, r.Backlog)
		buf = binary.NativeEndian.AppendUint32(buf, r.MaxBacklog)
		buf = append(buf, r.Addr[:]...)
		buf = binary.NativeEndian.AppendUint16(buf, r.Family)
		buf = binary.NativeEndian.AppendUint16(buf, r.Port)
		buf = binary.NativeEndian.AppendUint32(buf, 0)
	}
	got, err := decodeListenRecs(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Addr: netip.MustParseAddrPort("192.0.2.10:8080"), Backlog: 2, MaxBacklog: 16, NetNS: 7, Cookie: 9},
		{Addr: netip.MustParseAddrPort("[2001:db8::10]:443"), MaxBacklog: 3, NetNS: 7, Cookie: 10},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := decodeListenRecs(buf[:47]); err == nil {
		t.Error("truncated record accepted")
	}
}

func TestInetDiag(t *testing.T) {
	req := inetDiagListenReq(afInet6)
	if len(req) != 56 || req[0] != afInet6 || req[1] != 6 || binary.NativeEndian.Uint32(req[4:]) != 1<<10 {
		t.Errorf("request %x", req)
	}
	msg := make([]byte, 72)
	msg[0], msg[1] = afInet, tcpListen
	binary.BigEndian.PutUint16(msg[4:], 8080)
	copy(msg[8:], []byte{192, 0, 2, 10})
	binary.NativeEndian.PutUint32(msg[44:], 0x11223344)
	binary.NativeEndian.PutUint32(msg[48:], 0x1)
	binary.NativeEndian.PutUint32(msg[56:], 3)  // rqueue
	binary.NativeEndian.PutUint32(msg[60:], 64) // wqueue
	l, err := decodeInetDiagMsg(msg)
	want := Listener{Addr: netip.MustParseAddrPort("192.0.2.10:8080"), Backlog: 3, MaxBacklog: 64, Cookie: 0x1_11223344}
	if err != nil || l != want {
		t.Errorf("got %+v, %v; want %+v", l, err, want)
	}
	msg[1] = 1 // ESTABLISHED
	if l, _ := decodeInetDiagMsg(msg); l.Addr.IsValid() {
		t.Errorf("established socket decoded as listener: %+v", l)
	}
	if _, err := decodeInetDiagMsg(msg[:71]); err == nil {
		t.Error("short message accepted")
	}
}

// TestLoadWithoutCapabilities: without CAP_BPF, Load fails with an error
// wrapping ErrNotSupported (what the agent checks to fall back to sock_diag).
// As root it re-runs itself with every capability dropped.
func TestLoadWithoutCapabilities(t *testing.T) {
	if os.Getenv("LBCTL_BPF_NOCAPS") == "1" || os.Geteuid() != 0 {
		p, err := Load()
		if err == nil {
			p.Close()
			t.Skip("this kernel lets unprivileged users load tracing programs")
		}
		if !errors.Is(err, ErrNotSupported) {
			t.Fatalf("Load without capabilities: %v, want an error wrapping ErrNotSupported", err)
		}
		t.Logf("Load without capabilities: %v", err)
		return
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skipf("needs setpriv (util-linux) to drop capabilities: %v", err)
	}
	cmd := exec.Command(setpriv, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--",
		os.Args[0], "-test.run=^TestLoadWithoutCapabilities$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "LBCTL_BPF_NOCAPS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("without capabilities: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
