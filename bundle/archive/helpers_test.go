package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/lbctl/lbctl/bundle/sign"
)

// Test keys: A is trusted, B is unknown, C is trusted but revoked. They are
// derived from fixed seeds so fuzz workers and saved corpus entries agree.
var keyA, keyB, keyC = mustKey('A'), mustKey('B'), mustKey('C')

type testKey struct {
	pub  minisign.PublicKey
	priv minisign.PrivateKey
}

func mustKey(seed byte) testKey {
	pub, priv, err := minisign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		panic(err)
	}
	return testKey{pub, priv}
}

func testTrust() *sign.Trust {
	t := sign.NewTrust(keyA.pub, keyC.pub)
	t.Revoke(keyC.pub.ID())
	return t
}

var (
	testCreated = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testNow     = testCreated.Add(time.Hour)
)

func testFiles() []File {
	return []File{
		{Path: "resolved.json", Data: []byte(`{"format_version":2,"name":"campus"}` + "\n")},
		{Path: "nodes/lb1.json", Data: []byte(`{"hostname":"lb1"}` + "\n")},
		{Path: "render/lb1/haproxy/192.0.2.10.cfg", Data: bytes.Repeat([]byte("frontend x\n  bind 192.0.2.10:80\n"), 40)},
	}
}

// member is one raw tar member; the test builder writes whatever it is given.
type member struct {
	hdr  tar.Header
	data []byte
}

func reg(name string, data []byte) member {
	return member{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: testCreated, Format: tar.FormatUSTAR}, data: data}
}

// rawTar writes members verbatim; end adds the end-of-archive marker.
func rawTar(t testing.TB, ms []member, end bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := m.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if len(m.data) > 0 {
			if _, err := tw.Write(m.data); err != nil {
				t.Fatalf("tar data %q: %v", h.Name, err)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if end {
		buf.Write(make([]byte, 1024))
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.ModTime = testCreated // as Write sets it
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testManifest is the manifest Write would make for files and key.
func testManifest(files []File, key testKey) Manifest {
	m := Manifest{Format: FormatVersion, Serial: 7, Created: testCreated, KeyID: sign.FormatKeyID(key.pub.ID())}
	sorted := sortedFiles(files)
	for _, f := range sorted {
		sum := sha256.Sum256(f.Data)
		m.Files = append(m.Files, FileEntry{Path: f.Path, Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])})
	}
	return m
}

func sortedFiles(files []File) []File {
	s := append([]File(nil), files...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j].Path < s[i].Path {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func encode(t testing.TB, m Manifest) []byte {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// members returns manifest, signature and payload members for m and files,
// signing the manifest bytes with key.
func members(t testing.TB, m Manifest, files []File, key testKey) []member {
	t.Helper()
	mb := encode(t, m)
	ms := []member{reg(ManifestName, mb), reg(SignatureName, signManifest(key.priv, m.Serial, mb))}
	for _, f := range sortedFiles(files) {
		ms = append(ms, reg(f.Path, f.Data))
	}
	return ms
}

// validMembers is the member list of a good bundle of testFiles.
func validMembers(t testing.TB) []member {
	return members(t, testManifest(testFiles(), keyA), testFiles(), keyA)
}

func bundleOf(t testing.TB, ms []member) []byte { return gz(t, rawTar(t, ms, true)) }

func minisignVerify(pub minisign.PublicKey, msg, sig []byte) bool {
	return minisign.Verify(pub, msg, sig)
}
