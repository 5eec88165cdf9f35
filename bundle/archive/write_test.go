package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/sign"
)

func writeBundle(t testing.TB, m Manifest, files []File, key testKey) ([]byte, *Manifest) {
	t.Helper()
	var buf bytes.Buffer
	got, err := Write(&buf, m, files, key.priv)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), got
}

func TestWriteReadRoundTrip(t *testing.T) {
	exp := testCreated.Add(24 * time.Hour)
	data, wm := writeBundle(t, Manifest{Site: "campus", Serial: 42, Created: testCreated.Add(500 * time.Millisecond), Expires: &exp, Revision: "3f2a9c1"}, testFiles(), keyA)
	b, err := Read(bytes.NewReader(data), testTrust(), testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := b.Manifest
	if m.Site != "campus" || m.Serial != 42 || !m.Created.Equal(testCreated) || !m.Expires.Equal(exp) || m.Revision != "3f2a9c1" ||
		m.KeyID != sign.FormatKeyID(keyA.pub.ID()) || m.Format != FormatVersion || b.Signer != keyA.pub.ID() {
		t.Errorf("manifest %+v", m)
	}
	if wm.Serial != m.Serial || len(wm.Files) != len(m.Files) {
		t.Errorf("Write returned %+v, Read %+v", wm, m)
	}
	want := sortedFiles(testFiles())
	if len(b.Files) != len(want) {
		t.Fatalf("%d files, want %d", len(b.Files), len(want))
	}
	for i, f := range want {
		if b.Files[i].Path != f.Path || !bytes.Equal(b.Files[i].Data, f.Data) {
			t.Errorf("file %d: %q, want %q", i, b.Files[i].Path, f.Path)
		}
		if d, ok := b.File(f.Path); !ok || !bytes.Equal(d, f.Data) {
			t.Errorf("File(%q) lookup failed", f.Path)
		}
	}
	if b.TrustedComment != TrustedComment(42, b.ManifestBytes) {
		t.Errorf("trusted comment %q", b.TrustedComment)
	}
	// The same bundle is refused once expired.
	if _, err := Read(bytes.NewReader(data), testTrust(), exp, Limits{}); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: %v, want ErrExpired", err)
	}
}

func TestWriteIsReproducible(t *testing.T) {
	m := Manifest{Serial: 9, Created: testCreated, Revision: "abc"}
	a, _ := writeBundle(t, m, testFiles(), keyA)
	rev := testFiles()
	rev[0], rev[2] = rev[2], rev[0]
	b, _ := writeBundle(t, m, rev, keyA)
	if !bytes.Equal(a, b) {
		t.Fatal("same files, serial and time gave different bytes")
	}
	m.Serial = 10
	c, _ := writeBundle(t, m, testFiles(), keyA)
	if bytes.Equal(a, c) {
		t.Fatal("different serials gave the same bytes")
	}
}

// The headers are fixed: an archive says nothing about the machine or user
// that built it.
func TestWriteFixedHeaders(t *testing.T) {
	data, _ := writeBundle(t, Manifest{Serial: 1, Created: testCreated}, testFiles(), keyA)
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || zr.Comment != "" || !zr.ModTime.Equal(testCreated) || zr.Extra != nil {
		t.Errorf("gzip header %+v", zr.Header)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" ||
			!h.ModTime.Equal(testCreated) || h.Format&tar.FormatUSTAR == 0 || len(h.PAXRecords) != 0 {
			t.Errorf("header %+v", h)
		}
	}
	want := []string{ManifestName, SignatureName, "nodes/lb1.json", "render/lb1/haproxy/192.0.2.10.cfg", "resolved.json"}
	if len(names) != len(want) {
		t.Fatalf("members %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("members %q, want %q", names, want)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	exp := testCreated
	for _, c := range []struct {
		name  string
		m     Manifest
		files []File
	}{
		{"no creation time", Manifest{Serial: 1}, testFiles()},
		{"site name with a slash", Manifest{Site: "campus/a", Serial: 1, Created: testCreated}, testFiles()},
		{"site name starting with a dot", Manifest{Site: ".campus", Serial: 1, Created: testCreated}, testFiles()},
		{"format given", Manifest{Serial: 1, Created: testCreated, Format: 1}, testFiles()},
		{"expiry not after creation", Manifest{Serial: 1, Created: testCreated, Expires: &exp}, testFiles()},
		{"dot-dot path", Manifest{Serial: 1, Created: testCreated}, []File{{Path: "../x"}}},
		{"absolute path", Manifest{Serial: 1, Created: testCreated}, []File{{Path: "/x"}}},
		{"empty path", Manifest{Serial: 1, Created: testCreated}, []File{{Path: ""}}},
		{"reserved name", Manifest{Serial: 1, Created: testCreated}, []File{{Path: ManifestName}}},
		{"duplicate", Manifest{Serial: 1, Created: testCreated}, []File{{Path: "a"}, {Path: "a"}}},
		{"member over the default limit", Manifest{Serial: 1, Created: testCreated}, []File{{Path: "big", Data: make([]byte, DefaultLimits().MaxMemberSize+1)}}},
		{"non-ascii name", Manifest{Serial: 1, Created: testCreated}, []File{{Path: "caf\u00e9.json"}}},
		{"name too long for ustar", Manifest{Serial: 1, Created: testCreated}, []File{{Path: string(bytes.Repeat([]byte("a"), 120))}}},
	} {
		var buf bytes.Buffer
		if _, err := Write(&buf, c.m, c.files, keyA.priv); err == nil {
			t.Errorf("%s: Write accepted", c.name)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: Write wrote %d bytes before refusing", c.name, buf.Len())
		}
	}
}

// Long names go into the ustar prefix field and read back intact.
func TestWriteLongNames(t *testing.T) {
	long := []File{
		{Path: strings.Repeat("d", 150) + "/" + strings.Repeat("f", 100), Data: []byte("1")},
		{Path: "render/" + strings.Repeat("x", 99), Data: []byte("2")},
	}
	data, _ := writeBundle(t, Manifest{Serial: 1, Created: testCreated}, long, keyA)
	b, err := Read(bytes.NewReader(data), testTrust(), testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Files[0].Path != long[0].Path || b.Files[1].Path != long[1].Path {
		t.Errorf("names %q %q", b.Files[0].Path, b.Files[1].Path)
	}
	var buf bytes.Buffer
	if _, err := Write(&buf, Manifest{Serial: 1, Created: testCreated}, []File{{Path: strings.Repeat("d", 156) + "/f"}}, keyA.priv); err == nil {
		t.Error("prefix over 155 bytes accepted")
	}
}

func TestCheckPath(t *testing.T) {
	for _, ok := range []string{"a", "resolved.json", "render/lb1/haproxy/192.0.2.10.cfg", "a..b", ".hidden/x", "2001-db8--1.cfg"} {
		if err := CheckPath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "./a", "a/./b", "..", "../a", "a/..", `a\b`, "a\x00b", "a\nb", "\xff", string(bytes.Repeat([]byte("a"), 256))} {
		if err := CheckPath(bad); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%q: %v, want ErrUnsafePath", bad, err)
		}
	}
}
