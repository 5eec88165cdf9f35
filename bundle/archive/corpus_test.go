package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
)

// sentinels are every refusal reason; a bad bundle must match exactly one
// (plus ErrLimit for the limit errors).
var sentinels = map[string]error{
	"ErrNotGzip": ErrNotGzip, "ErrCorrupt": ErrCorrupt, "ErrTruncated": ErrTruncated,
	"ErrTrailingData": ErrTrailingData, "ErrNoManifest": ErrNoManifest, "ErrUnsigned": ErrUnsigned,
	"ErrMalformedSignature": ErrMalformedSignature, "ErrUntrustedKey": ErrUntrustedKey,
	"ErrRevokedKey": ErrRevokedKey, "ErrBadSignature": ErrBadSignature, "ErrTrustedComment": ErrTrustedComment,
	"ErrBadManifest": ErrBadManifest, "ErrFormatVersion": ErrFormatVersion, "ErrKeyMismatch": ErrKeyMismatch,
	"ErrExpired": ErrExpired, "ErrNotRegular": ErrNotRegular, "ErrUnsafePath": ErrUnsafePath,
	"ErrDuplicate": ErrDuplicate, "ErrUnexpectedMember": ErrUnexpectedMember, "ErrMemberOrder": ErrMemberOrder,
	"ErrMissingMember": ErrMissingMember, "ErrSizeMismatch": ErrSizeMismatch, "ErrHashMismatch": ErrHashMismatch,
	"ErrTarFormat": ErrTarFormat, "ErrHeader": ErrHeader, "ErrTooManyMembers": ErrTooManyMembers, "ErrMemberTooLarge": ErrMemberTooLarge,
	"ErrTooLarge": ErrTooLarge, "ErrCompressionRatio": ErrCompressionRatio,
}

type badCase struct {
	name  string
	build func(t testing.TB) []byte
	lim   Limits
	want  error
}

// withMembers builds a bundle from the valid member list after edit.
func withMembers(edit func(t testing.TB, ms []member) []member) func(t testing.TB) []byte {
	return func(t testing.TB) []byte { return bundleOf(t, edit(t, validMembers(t))) }
}

// signedWith builds a bundle whose manifest m (after edit) is signed with
// key over files.
func signedWith(key testKey, edit func(m *Manifest), files []File) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		m := testManifest(files, key)
		if edit != nil {
			edit(&m)
		}
		return bundleOf(t, members(t, m, files, key))
	}
}

func special(typ byte, name, link string) func(t testing.TB, ms []member) []member {
	return func(t testing.TB, ms []member) []member {
		h := tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o644, ModTime: testCreated, Format: tar.FormatUSTAR, Devmajor: 1, Devminor: 3}
		return append(ms[:2], append([]member{{hdr: h}}, ms[2:]...)...)
	}
}

func insertAfterSig(m member) func(t testing.TB, ms []member) []member {
	return func(t testing.TB, ms []member) []member {
		return append(ms[:2], append([]member{m}, ms[2:]...)...)
	}
}

func badCases() []badCase {
	files := testFiles()
	cs := []badCase{
		{name: "unsigned", want: ErrUnsigned, build: withMembers(func(t testing.TB, ms []member) []member {
			return append(ms[:1], ms[2:]...)
		})},
		{name: "signature not second", want: ErrUnsigned, build: withMembers(func(t testing.TB, ms []member) []member {
			return append(append([]member{ms[0]}, ms[2:]...), ms[1])
		})},
		{name: "manifest only", want: ErrUnsigned, build: withMembers(func(t testing.TB, ms []member) []member { return ms[:1] })},
		{name: "manifest not first", want: ErrNoManifest, build: withMembers(func(t testing.TB, ms []member) []member {
			return append(ms[2:], ms[:2]...)
		})},
		{name: "empty archive", want: ErrNoManifest, build: func(t testing.TB) []byte { return bundleOf(t, nil) }},
		{name: "wrong key", want: ErrUntrustedKey, build: signedWith(keyB, nil, files)},
		{name: "revoked key", want: ErrRevokedKey, build: signedWith(keyC, nil, files)},
		{name: "malformed signature", want: ErrMalformedSignature, build: withMembers(func(t testing.TB, ms []member) []member {
			ms[1] = reg(SignatureName, []byte("untrusted comment: hello\nnot base64!\n"))
			return ms
		})},
		{name: "signature of another manifest", want: ErrBadSignature, build: withMembers(func(t testing.TB, ms []member) []member {
			other := testManifest(files, keyA)
			other.Serial = 8
			ms[1] = reg(SignatureName, signManifest(keyA.priv, 7, encode(t, other)))
			return ms
		})},
		{name: "trusted comment mismatch", want: ErrTrustedComment, build: withMembers(func(t testing.TB, ms []member) []member {
			r := minisign.NewReader(bytes.NewReader(ms[0].data))
			r.Read(make([]byte, len(ms[0].data)+1))
			ms[1] = reg(SignatureName, r.SignWithComments(keyA.priv, TrustedComment(999, ms[0].data), "x"))
			return ms
		})},
		{name: "plain minisign trusted comment", want: ErrTrustedComment, build: withMembers(func(t testing.TB, ms []member) []member {
			ms[1] = reg(SignatureName, minisign.Sign(keyA.priv, ms[0].data))
			return ms
		})},
		{name: "manifest names another key", want: ErrKeyMismatch, build: signedWith(keyA, func(m *Manifest) {
			m.KeyID = testManifest(nil, keyB).KeyID
		}, files)},
		{name: "signed site name outside the grammar", want: ErrBadManifest, build: signedWith(keyA, func(m *Manifest) { m.Site = "campus/../lab" }, files)},
		{name: "wrong format version", want: ErrFormatVersion, build: signedWith(keyA, func(m *Manifest) { m.Format = 2 }, files)},
		{name: "expired", want: ErrExpired, build: signedWith(keyA, func(m *Manifest) {
			e := testNow.Add(-time.Second)
			m.Expires = &e
		}, files)},
		{name: "expires exactly now", want: ErrExpired, build: signedWith(keyA, func(m *Manifest) {
			e := testNow
			m.Expires = &e
		}, files)},
		{name: "manifest not canonical", want: ErrBadManifest, build: withMembers(func(t testing.TB, ms []member) []member {
			mb := bytes.ReplaceAll(ms[0].data, []byte("\n  "), []byte("\n "))
			ms[0] = reg(ManifestName, mb)
			ms[1] = reg(SignatureName, signManifest(keyA.priv, 7, mb))
			return ms
		})},
		{name: "manifest unknown field", want: ErrBadManifest, build: withMembers(func(t testing.TB, ms []member) []member {
			mb := bytes.Replace(ms[0].data, []byte("{\n"), []byte("{\n  \"extra\": 1,\n"), 1)
			ms[0] = reg(ManifestName, mb)
			ms[1] = reg(SignatureName, signManifest(keyA.priv, 7, mb))
			return ms
		})},
		{name: "manifest files unsorted", want: ErrBadManifest, build: signedWith(keyA, func(m *Manifest) {
			m.Files[0], m.Files[1] = m.Files[1], m.Files[0]
		}, files)},
		{name: "manifest lists dot-dot path", want: ErrUnsafePath, build: signedWith(keyA, nil, []File{{Path: "../etc/cron.d/x", Data: []byte("x")}})},
		{name: "manifest lists absolute path", want: ErrUnsafePath, build: signedWith(keyA, nil, []File{{Path: "/etc/passwd", Data: []byte("x")}})},
		{name: "manifest lists a file twice", want: ErrDuplicate, build: signedWith(keyA, nil, append(testFiles(), testFiles()[0]))},
		{name: "size mismatch", want: ErrSizeMismatch, build: signedWith(keyA, func(m *Manifest) { m.Files[0].Size++ }, files)},
		{name: "hash mismatch", want: ErrHashMismatch, build: signedWith(keyA, func(m *Manifest) {
			m.Files[2].SHA256 = strings.Repeat("ab", 32)
		}, files)},
		{name: "missing member", want: ErrMissingMember, build: withMembers(func(t testing.TB, ms []member) []member { return ms[:len(ms)-1] })},
		{name: "extra member", want: ErrUnexpectedMember, build: withMembers(func(t testing.TB, ms []member) []member {
			return append(ms, reg("render/lb1/extra.cfg", []byte("x")))
		})},
		{name: "members out of order", want: ErrMemberOrder, build: withMembers(func(t testing.TB, ms []member) []member {
			ms[2], ms[3] = ms[3], ms[2]
			return ms
		})},
		{name: "duplicate member", want: ErrDuplicate, build: withMembers(func(t testing.TB, ms []member) []member {
			return append(ms[:3], append([]member{ms[2]}, ms[3:]...)...)
		})},
		{name: "second manifest member", want: ErrDuplicate, build: withMembers(func(t testing.TB, ms []member) []member { return append(ms, ms[0]) })},
		{name: "dot-dot name", want: ErrUnsafePath, build: withMembers(insertAfterSig(reg("../../etc/cron.d/evil", []byte("* * * * * root sh\n"))))},
		{name: "dot-dot inside name", want: ErrUnsafePath, build: withMembers(insertAfterSig(reg("nodes/../../evil", []byte("x"))))},
		{name: "absolute name", want: ErrUnsafePath, build: withMembers(insertAfterSig(reg("/etc/passwd", []byte("root::0:0::/:/bin/sh\n"))))},
		{name: "backslash name", want: ErrUnsafePath, build: withMembers(insertAfterSig(reg(`..\..\evil`, []byte("x"))))},
		{name: "symlink", want: ErrNotRegular, build: withMembers(special(tar.TypeSymlink, "nodes/lb1.json", "/etc/shadow"))},
		{name: "hard link", want: ErrNotRegular, build: withMembers(special(tar.TypeLink, "nodes/lb1.json", "/etc/shadow"))},
		{name: "character device", want: ErrNotRegular, build: withMembers(special(tar.TypeChar, "dev/mem", ""))},
		{name: "block device", want: ErrNotRegular, build: withMembers(special(tar.TypeBlock, "dev/sda", ""))},
		{name: "fifo", want: ErrNotRegular, build: withMembers(special(tar.TypeFifo, "fifo", ""))},
		{name: "directory", want: ErrNotRegular, build: withMembers(special(tar.TypeDir, "render/", ""))},
		{name: "symlink as manifest", want: ErrNotRegular, build: withMembers(func(t testing.TB, ms []member) []member {
			return append([]member{{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: ManifestName, Linkname: "/etc/passwd", Format: tar.FormatUSTAR}}}, ms[1:]...)
		})},
		{name: "pax header", want: ErrTarFormat, build: withMembers(func(t testing.TB, ms []member) []member {
			ms[2].hdr.Format = tar.FormatPAX
			ms[2].hdr.PAXRecords = map[string]string{"comment": "hi"}
			return ms
		})},
		{name: "gnu header", want: ErrTarFormat, build: withMembers(func(t testing.TB, ms []member) []member {
			ms[2].hdr.Format = tar.FormatGNU
			return ms
		})},
		{name: "oversize member", want: ErrMemberTooLarge, lim: Limits{MaxMemberSize: 1000}, build: signedWith(keyA, nil, files)},
		{name: "oversize total", want: ErrTooLarge, lim: Limits{MaxTotalSize: 1000}, build: signedWith(keyA, nil, files)},
		{name: "oversize stream", want: ErrTooLarge, lim: Limits{MaxTotalSize: 4000}, build: withMembers(func(t testing.TB, ms []member) []member {
			return append(ms, reg("zz-extra", make([]byte, 4096)))
		})},
		{name: "compression bomb", want: ErrCompressionRatio, build: signedWith(keyA, nil, []File{{Path: "bomb.json", Data: make([]byte, 48<<20)}})},
		{name: "too many members", want: ErrTooManyMembers, lim: Limits{MaxMembers: 4}, build: signedWith(keyA, nil, files)},
		{name: "truncated archive", want: ErrTruncated, build: func(t testing.TB) []byte {
			b := bundleOf(t, validMembers(t))
			return b[:len(b)/2]
		}},
		{name: "truncated gzip trailer", want: ErrTruncated, build: func(t testing.TB) []byte {
			b := bundleOf(t, validMembers(t))
			return b[:len(b)-4]
		}},
		{name: "no end-of-archive marker", want: ErrTruncated, build: func(t testing.TB) []byte {
			return gz(t, rawTar(t, validMembers(t), false))
		}},
		{name: "half end-of-archive marker", want: ErrTruncated, build: func(t testing.TB) []byte {
			return gz(t, append(rawTar(t, validMembers(t), false), make([]byte, 512)...))
		}},
		{name: "garbage after tar end", want: ErrTrailingData, build: func(t testing.TB) []byte {
			return gz(t, append(rawTar(t, validMembers(t), true), "garbage"...))
		}},
		{name: "zero padding after tar end", want: ErrTrailingData, build: func(t testing.TB) []byte {
			return gz(t, append(rawTar(t, validMembers(t), true), make([]byte, 8192)...))
		}},
		{name: "garbage after gzip end", want: ErrTrailingData, build: func(t testing.TB) []byte {
			return append(bundleOf(t, validMembers(t)), "garbage"...)
		}},
		{name: "second gzip stream", want: ErrTrailingData, build: func(t testing.TB) []byte {
			return append(bundleOf(t, validMembers(t)), gz(t, []byte("more"))...)
		}},
		{name: "gzip crc flipped", want: ErrCorrupt, build: func(t testing.TB) []byte {
			b := bundleOf(t, validMembers(t))
			b[len(b)-8] ^= 0x01
			return b
		}},
		{name: "tar header checksum flipped", want: ErrCorrupt, build: func(t testing.TB) []byte {
			raw := rawTar(t, validMembers(t), true)
			raw[148] ^= 0x01 // checksum field of the first header
			return gz(t, raw)
		}},
		{name: "not gzip", want: ErrNotGzip, build: func(t testing.TB) []byte { return rawTar(t, validMembers(t), true) }},
		{name: "empty input", want: ErrNotGzip, build: func(t testing.TB) []byte { return nil }},
	}
	// A flipped byte in every member in turn.
	for i, m := range validMembers(nopTB{}) {
		want := ErrHashMismatch
		if i < 2 {
			want = ErrBadSignature
		}
		cs = append(cs, badCase{name: "flipped byte in " + m.hdr.Name, want: want, build: withMembers(func(t testing.TB, ms []member) []member {
			data := append([]byte(nil), ms[i].data...)
			pos := len(data) / 2
			if i == 1 {
				// In the signature's base64 line, to another base64 letter
				// (the untrusted comment on the first line is not signed).
				pos = bytes.IndexByte(data, '\n') + 20
				data[pos] = map[bool]byte{true: 'A', false: 'B'}[data[pos] != 'A']
			} else {
				data[pos] ^= 0x20
			}
			ms[i].data = data
			return ms
		})})
	}
	return cs
}

// nopTB lets the case table be built outside a test; validMembers does not
// fail on a good key.
type nopTB struct{ testing.TB }

func (nopTB) Helper()               {}
func (nopTB) Fatal(args ...any)     { panic(args) }
func (nopTB) Fatalf(string, ...any) { panic("fatal") }

func TestBadBundles(t *testing.T) {
	cases := badCases()
	if len(cases) < 25 {
		t.Fatalf("only %d bad-bundle cases", len(cases))
	}
	trust := testTrust()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.build(t)
			// Nothing may be written: Read never touches the disk (a fresh
			// TMPDIR stays empty).
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			_, err := Read(bytes.NewReader(data), trust, testNow, c.lim)
			if err == nil {
				t.Fatalf("bad bundle accepted")
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			for name, s := range sentinels {
				if s != c.want && errors.Is(err, s) && !errors.Is(c.want, s) {
					t.Errorf("error %v also matches %s", err, name)
				}
			}
			if !strings.HasPrefix(err.Error(), "read bundle: ") {
				t.Errorf("error %q lacks the read bundle prefix", err)
			}
			assertEmpty(t, tmp)
			t.Logf("%v", err)
		})
	}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s: unexpected %s", dir, e.Name())
	}
}

// The valid member list the corpus mutates is itself accepted, so every
// refusal above comes from its one mutation.
func TestCorpusBaseIsValid(t *testing.T) {
	b, err := Read(bytes.NewReader(bundleOf(t, validMembers(t))), testTrust(), testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Files) != 3 || b.Manifest.Serial != 7 || b.Signer != keyA.pub.ID() {
		t.Fatalf("unexpected bundle %+v", b.Manifest)
	}
}
