package pack

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/sign"
)

func TestRoundTrip(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	site := &model.Site{FormatVersion: model.FormatVersion, Name: "campus",
		Nodes: []model.Node{{Hostname: "lb1", RouterID: netip.MustParseAddr("198.51.100.11")}, {Hostname: "lb2", RouterID: netip.MustParseAddr("198.51.100.12")}}}
	files, err := Files(site)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || files[0].Path != "nodes/lb1.json" || files[2].Path != ResolvedPath {
		t.Fatalf("files %v", files)
	}
	write := func(files []archive.File, siteName ...string) *archive.Bundle {
		var buf bytes.Buffer
		m := archive.Manifest{Serial: 5, Created: time.Unix(1700000000, 0).UTC()}
		if len(siteName) > 0 {
			m.Site = siteName[0]
		}
		if _, err := archive.Write(&buf, m, files, priv); err != nil {
			t.Fatal(err)
		}
		b, err := archive.Read(&buf, sign.NewTrust(pub), time.Unix(1700000001, 0), archive.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got, err := Site(write(files))
	if err != nil || got.Name != "campus" || len(got.Nodes) != 2 {
		t.Fatalf("site %+v %v", got, err)
	}
	// A signed bundle whose node file disagrees with the model is refused.
	bad := append([]archive.File{}, files...)
	bad[0] = archive.File{Path: "nodes/lb1.json", Data: []byte("{}\n")}
	if _, err := Site(write(bad)); err == nil || !strings.Contains(err.Error(), "nodes/lb1.json does not match") {
		t.Fatalf("mismatch: %v", err)
	}
	// The manifest carries the site's name, signed; it must agree with
	// the resolved model's.
	b := write(files, Manifest(site, archive.Manifest{}).Site)
	if b.Manifest.Site != "campus" {
		t.Fatalf("manifest site %q", b.Manifest.Site)
	}
	if _, err := Site(b); err != nil {
		t.Fatal(err)
	}
	if _, err := Site(write(files, "lab")); err == nil || !strings.Contains(err.Error(), `the manifest names site "lab", its resolved.json site "campus"`) {
		t.Fatalf("site mismatch: %v", err)
	}
}
