package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// headerCase is a bundle whose one member header (or gzip header) differs
// from what Write makes; Read must refuse it with want and a message naming
// the member and the header field.
type headerCase struct {
	name   string
	build  func(t testing.TB) []byte
	want   error
	member string // named in the message
	field  string // named in the message
}

// editHeader changes the parsed header of member i before it is written.
func editHeader(i int, edit func(h *tar.Header)) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		ms := validMembers(t)
		edit(&ms[i].hdr)
		return bundleOf(t, ms)
	}
}

// memberOffsets returns the offset of each member's header block in a tar
// written by rawTar from ms.
func memberOffsets(ms []member) []int {
	var offs []int
	off := 0
	for _, m := range ms {
		offs = append(offs, off)
		off += tarBlock + (len(m.data)+tarBlock-1)/tarBlock*tarBlock
	}
	return offs
}

// patchBlock overwrites bytes of member i's header block at off, then
// recomputes the block's checksum the way archive/tar writes it, so only
// the patched field differs.
func patchBlock(i, off int, b []byte) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		ms := validMembers(t)
		raw := rawTar(t, ms, true)
		at := memberOffsets(ms)[i]
		blk := raw[at : at+tarBlock]
		copy(blk[off:], b)
		copy(blk[148:156], "        ")
		sum := 0
		for _, c := range blk {
			sum += int(c)
		}
		copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
		return gz(t, raw)
	}
}

// withGzip builds the valid bundle with an edited gzip header.
func withGzip(edit func(h *gzip.Header)) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.ModTime = testCreated
		edit(&zw.Header)
		zw.Write(rawTar(t, validMembers(t), true))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
}

func headerCases() []headerCase {
	// validMembers: 0 manifest, 1 signature, 2 nodes/lb1.json,
	// 3 render/lb1/haproxy/192.0.2.10.cfg, 4 resolved.json.
	const payload = "nodes/lb1.json"
	cs := []headerCase{
		{"setuid", editHeader(2, func(h *tar.Header) { h.Mode = 0o4644 }), ErrHeader, payload, "mode"},
		{"setuid root shell", editHeader(4, func(h *tar.Header) { h.Mode = 0o4755 }), ErrHeader, ResolvedFile, "mode"},
		{"setgid", editHeader(2, func(h *tar.Header) { h.Mode = 0o2644 }), ErrHeader, payload, "mode"},
		{"sticky", editHeader(2, func(h *tar.Header) { h.Mode = 0o1644 }), ErrHeader, payload, "mode"},
		{"executable 0755", editHeader(2, func(h *tar.Header) { h.Mode = 0o755 }), ErrHeader, payload, "mode"},
		{"world writable 0666", editHeader(2, func(h *tar.Header) { h.Mode = 0o666 }), ErrHeader, payload, "mode"},
		{"file type bits in mode", editHeader(2, func(h *tar.Header) { h.Mode = 0o100644 }), ErrHeader, payload, "mode"},
		{"manifest setuid", editHeader(0, func(h *tar.Header) { h.Mode = 0o4644 }), ErrHeader, ManifestName, "mode"},
		{"signature 0600", editHeader(1, func(h *tar.Header) { h.Mode = 0o600 }), ErrHeader, SignatureName, "mode"},
		{"uid", editHeader(2, func(h *tar.Header) { h.Uid = 1000 }), ErrHeader, payload, "uid"},
		{"gid", editHeader(2, func(h *tar.Header) { h.Gid = 33 }), ErrHeader, payload, "gid"},
		{"uname", editHeader(2, func(h *tar.Header) { h.Uname = "root" }), ErrHeader, payload, "uname"},
		{"gname", editHeader(2, func(h *tar.Header) { h.Gname = "wheel" }), ErrHeader, payload, "gname"},
		{"manifest uname", editHeader(0, func(h *tar.Header) { h.Uname = "admin" }), ErrHeader, ManifestName, "uname"},
		{"linkname on a regular file", editHeader(2, func(h *tar.Header) { h.Linkname = "/etc/shadow" }), ErrHeader, payload, "linkname"},
		{"device numbers on a regular file", editHeader(2, func(h *tar.Header) { h.Devmajor, h.Devminor = 1, 3 }), ErrHeader, payload, "devmajor"},
		{"payload mtime", editHeader(2, func(h *tar.Header) { h.ModTime = testCreated.Add(time.Second) }), ErrHeader, payload, "mtime"},
		{"manifest mtime", editHeader(0, func(h *tar.Header) { h.ModTime = time.Unix(0, 0) }), ErrHeader, ManifestName, "mtime"},
		{"signature mtime", editHeader(1, func(h *tar.Header) { h.ModTime = testCreated.Add(-time.Hour) }), ErrHeader, SignatureName, "mtime"},
		{"symlink", withMembers(special(tar.TypeSymlink, "nodes/lb0.json", "/etc/shadow")), ErrNotRegular, "nodes/lb0.json", "typeflag"},
		{"hard link", withMembers(special(tar.TypeLink, "nodes/lb0.json", "nodes/lb1.json")), ErrNotRegular, "nodes/lb0.json", "typeflag"},
		{"directory", withMembers(special(tar.TypeDir, "nodes/", "")), ErrNotRegular, "nodes/", "typeflag"},
		{"character device", withMembers(special(tar.TypeChar, "dev-null", "")), ErrNotRegular, "dev-null", "typeflag"},
		{"block device", withMembers(special(tar.TypeBlock, "dev-sda", "")), ErrNotRegular, "dev-sda", "typeflag"},
		{"fifo", withMembers(special(tar.TypeFifo, "pipe", "")), ErrNotRegular, "pipe", "typeflag"},
		{"pax comment", editHeader(2, func(h *tar.Header) {
			h.Format, h.PAXRecords = tar.FormatPAX, map[string]string{"comment": "hi"}
		}), ErrTarFormat, payload, "format"},
		{"pax xattr (file capability)", editHeader(2, func(h *tar.Header) {
			h.Format, h.PAXRecords = tar.FormatPAX, map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}
		}), ErrTarFormat, payload, "format"},
		{"pax path override", editHeader(2, func(h *tar.Header) {
			h.Format, h.PAXRecords = tar.FormatPAX, map[string]string{"path": payload}
		}), ErrTarFormat, payload, "format"},
		{"pax uid", editHeader(2, func(h *tar.Header) { h.Format, h.Uid = tar.FormatPAX, 1<<22 }), ErrTarFormat, payload, "format"},
		{"gnu header", editHeader(2, func(h *tar.Header) { h.Format = tar.FormatGNU }), ErrTarFormat, payload, "format"},
		{"duplicated name", withMembers(func(t testing.TB, ms []member) []member {
			return append(ms[:3], append([]member{ms[2]}, ms[3:]...)...)
		}), ErrDuplicate, payload, ""},
		// Bytes archive/tar does not parse into a field, patched with the
		// checksum fixed up: still refused, naming the field.
		{"bytes after the name", patchBlock(2, 60, []byte("x")), ErrHeader, payload, "name"},
		{"typeflag NUL (old regular file)", patchBlock(2, 156, []byte{0}), ErrHeader, payload, "typeflag"},
		{"mode with a space terminator", patchBlock(2, 107, []byte(" ")), ErrTarFormat, payload, "format"},
		{"gnu version field", patchBlock(2, 263, []byte(" \x00")), ErrHeader, payload, "version"},
		{"padding bytes", patchBlock(2, 505, []byte("hi")), ErrHeader, payload, "padding"},
		{"manifest padding bytes", patchBlock(0, 505, []byte("hi")), ErrHeader, ManifestName, "padding"},
		{"gzip name", withGzip(func(h *gzip.Header) { h.Name = "../../etc/cron.d/x" }), ErrHeader, "gzip header", "name"},
		{"gzip comment", withGzip(func(h *gzip.Header) { h.Comment = "hi" }), ErrHeader, "gzip header", "comment"},
		{"gzip extra", withGzip(func(h *gzip.Header) { h.Extra = []byte("AB\x02\x00hi") }), ErrHeader, "gzip header", "extra"},
		{"gzip os", withGzip(func(h *gzip.Header) { h.OS = 3 }), ErrHeader, "gzip header", "os"},
		{"gzip mtime", withGzip(func(h *gzip.Header) { h.ModTime = time.Time{} }), ErrHeader, "gzip header", "mtime"},
	}
	return cs
}

// Every header case is refused with its sentinel, and the message names
// the member and the header field.
func TestHeaderRefused(t *testing.T) {
	trust := testTrust()
	for _, c := range headerCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.build(t)), trust, testNow, Limits{})
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%q", c.member)) && !strings.Contains(msg, c.member) {
				t.Errorf("error %q does not name %s", msg, c.member)
			}
			if c.field != "" && !strings.Contains(msg, "field "+c.field) && !strings.Contains(msg, "header "+c.field) {
				t.Errorf("error %q does not name the header field %s", msg, c.field)
			}
			t.Log(msg)
		})
	}
}

// canonicalTar is the tar stream Write makes for a bundle: every header a
// function of the signed manifest.
func canonicalTar(t testing.TB, b *Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, data []byte) {
		if err := tw.WriteHeader(memberHeader(name, int64(len(data)), b.Manifest.Created)); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	put(ManifestName, b.ManifestBytes)
	put(SignatureName, b.Signature)
	for _, f := range b.Files {
		put(f.Path, f.Data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkBound asserts that an accepted bundle's decompressed bytes and gzip
// header are exactly what the signed manifest and payload determine: the
// signature binds every byte of the archive but the deflate encoding.
func checkBound(t testing.TB, data []byte, b *Bundle) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := canonicalTar(t, b); !bytes.Equal(raw, want) {
		t.Fatalf("accepted a tar stream of %d bytes that differs from the canonical %d bytes", len(raw), len(want))
	}
	if h := zr.Header; h.Name != "" || h.Comment != "" || h.Extra != nil || h.OS != gzipOS || !h.ModTime.Equal(b.Manifest.Created) {
		t.Fatalf("accepted gzip header %+v", h)
	}
}

func TestAcceptedIsCanonical(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Write(&buf, Manifest{Serial: 3, Created: testCreated}, testFiles(), keyA.priv); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"Write": buf.Bytes(), "corpus base": bundleOf(t, validMembers(t))} {
		b, err := Read(bytes.NewReader(data), testTrust(), testNow, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkBound(t, data, b)
	}
}
