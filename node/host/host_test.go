package host

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lbctl/lbctl/health"
	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/node/plan"
	"github.com/lbctl/lbctl/node/release"
)

type recAnnouncer struct{ got []netip.Prefix }

func (r *recAnnouncer) Set(_ context.Context, p []netip.Prefix) error { r.got = p; return nil }

func TestWriteRemoveVIP(t *testing.T) {
	root := t.TempDir()
	h := &Host{Paths: Paths{VIPDir: filepath.Join(root, "vips"), UnitDir: filepath.Join(root, "units")}}
	ctx := context.Background()
	v := &plan.VIP{Name: "192.0.2.10", Transparent: true, Files: []plan.File{
		{Path: "haproxy.cfg", Data: []byte("global\n")}, {Path: "crt-list", Data: []byte("x\n")}}}
	if err := h.WriteVIP(ctx, v); err != nil {
		t.Fatal(err)
	}
	dropIn := filepath.Join(root, "units", "lb-haproxy@192.0.2.10.service.d", "transparent.conf")
	if _, err := os.Stat(dropIn); err != nil {
		t.Fatalf("drop-in: %v", err)
	}
	// A new version without crt-list and not transparent: both go.
	v2 := &plan.VIP{Name: v.Name, Files: v.Files[:1]}
	if err := h.WriteVIP(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "vips", v.Name, "crt-list")); !os.IsNotExist(err) {
		t.Fatalf("stale crt-list: %v", err)
	}
	if _, err := os.Stat(dropIn); !os.IsNotExist(err) {
		t.Fatalf("stale drop-in: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "vips", v.Name, "haproxy.cfg")); string(b) != "global\n" {
		t.Fatalf("config %q", b)
	}
	if err := h.RemoveVIP(ctx, v.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "vips", v.Name)); !os.IsNotExist(err) {
		t.Fatal("VIP directory left")
	}
	if err := h.WriteVIP(ctx, &plan.VIP{Name: "../etc"}); err == nil {
		t.Fatal("unsafe VIP name accepted")
	}
}

func TestAnnounceWithoutAgentHoldsBackDrained(t *testing.T) {
	store, _ := release.Open(t.TempDir())
	ann := &recAnnouncer{}
	h := &Host{Store: store, Announcer: ann, Agent: agent.Client{Socket: filepath.Join(t.TempDir(), "none.sock")}}
	store.WriteDrains(health.Drains{VIPs: []string{"b"}})
	vips := []plan.VIP{
		{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}},
		{Name: "b", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.11")}},
	}
	if err := h.Announce(context.Background(), vips); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::10/128")}
	if !slices.Equal(ann.got, want) {
		t.Fatalf("announced %v, want %v", ann.got, want)
	}
	got, _ := store.ReadAnnounceable()
	if len(got.VIPs) != 2 {
		t.Fatalf("announceable %+v", got)
	}
}
