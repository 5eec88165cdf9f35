package archive

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

var fuzzLimits = Limits{MaxMembers: 64, MaxMemberSize: 1 << 20, MaxTotalSize: 4 << 20, RatioFloor: 1 << 20}

// FuzzRead feeds Read arbitrary bytes. With wrap set the input is a tar
// stream that the target gzips first, so mutations reach the tar and payload
// checks behind a correctly signed manifest instead of dying in deflate.
// Read must never panic, every error must wrap one of the package's
// sentinels, and an accepted bundle must be exactly its signed manifest,
// header bytes included (checkBound).
func FuzzRead(f *testing.F) {
	good := validMembers(f)
	f.Add(bundleOf(f, good), false)
	f.Add(rawTar(f, good, true), true)
	var buf bytes.Buffer
	Write(&buf, Manifest{Serial: 1, Created: testCreated}, testFiles(), keyA.priv)
	f.Add(buf.Bytes(), false)
	for _, c := range badCases() {
		if c.name == "compression bomb" {
			continue
		}
		f.Add(c.build(f), false)
	}
	for _, c := range headerCases() {
		f.Add(c.build(f), false)
	}
	f.Add(rawTar(f, good[:3], false), true)
	trust := testTrust()
	// Stored (uncompressed) deflate blocks: cheap, and the tar bytes the
	// fuzzer mutates are what Read sees.
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.NoCompression)
	zw.ModTime = testCreated // as Write sets it, so the gzip header passes
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		if wrap {
			z.Reset()
			zw.Reset(&z)
			zw.ModTime = testCreated
			zw.Write(data)
			zw.Close()
			data = z.Bytes()
		}
		b, err := Read(bytes.NewReader(data), trust, testNow, fuzzLimits)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		if b.Signer != keyA.pub.ID() {
			t.Fatalf("accepted a bundle signed by %x", b.Signer)
		}
		if len(b.Files) != len(b.Manifest.Files) {
			t.Fatalf("%d files for %d manifest entries", len(b.Files), len(b.Manifest.Files))
		}
		for i, f := range b.Files {
			e := b.Manifest.Files[i]
			sum := sha256.Sum256(f.Data)
			if f.Path != e.Path || int64(len(f.Data)) != e.Size || hex.EncodeToString(sum[:]) != e.SHA256 || CheckPath(f.Path) != nil {
				t.Fatalf("file %d %q does not match manifest entry %+v", i, f.Path, e)
			}
		}
		checkBound(t, data, b)
	})
}
