package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"aead.dev/minisign"

	"github.com/lbctl/lbctl/bundle/sign"
)

// Limits bound what Read accepts. A zero field takes its default from
// DefaultLimits.
type Limits struct {
	// MaxMembers bounds the number of tar members, manifest and signature
	// included.
	MaxMembers int
	// MaxMemberSize bounds each payload file.
	MaxMemberSize int64
	// MaxTotalSize bounds the decompressed stream (headers included).
	MaxTotalSize int64
	// MaxRatio bounds decompressed bytes per compressed byte read, checked
	// continuously once RatioFloor decompressed bytes have been produced.
	MaxRatio int64
	// RatioFloor is the decompressed size below which the ratio is not
	// checked (tiny bundles compress very well).
	RatioFloor int64
}

// tarBlock is the tar record block size.
const tarBlock = 512

// Fixed caps on the two leading members.
const (
	maxManifestSize  = 32 << 20
	maxSignatureSize = 8 << 10
)

// DefaultLimits returns the limits Read uses for zero fields: 100,000
// members, 64 MiB per member, 512 MiB in all, ratio 200 after 4 MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxMembers:    100_000,
		MaxMemberSize: 64 << 20,
		MaxTotalSize:  512 << 20,
		MaxRatio:      200,
		RatioFloor:    4 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxMembers <= 0 {
		l.MaxMembers = d.MaxMembers
	}
	if l.MaxMemberSize <= 0 {
		l.MaxMemberSize = d.MaxMemberSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.RatioFloor <= 0 {
		l.RatioFloor = d.RatioFloor
	}
	return l
}

// Bundle is a verified bundle, held in memory.
type Bundle struct {
	Manifest Manifest
	// ManifestBytes are the signed manifest bytes, Signature the minisign
	// signature of them.
	ManifestBytes []byte
	Signature     []byte
	// Signer is the ID of the trusted key that signed the bundle.
	Signer uint64
	// TrustedComment is the signed comment of the signature.
	TrustedComment string
	// Files are the payload files in manifest order.
	Files []File
}

// File returns the data of the payload file at path.
func (b *Bundle) File(path string) ([]byte, bool) {
	for _, f := range b.Files {
		if f.Path == path {
			return f.Data, true
		}
	}
	return nil, false
}

// Read reads and verifies a bundle from r, holding everything in memory and
// writing nothing anywhere. trust says which keys may sign; now is the time
// expiry is judged at (a zero now skips the expiry check: a node going back
// to a release it installed itself); zero fields of lim take defaults. The error wraps one
// of the package's sentinel errors.
func Read(r io.Reader, trust *sign.Trust, now time.Time, lim Limits) (*Bundle, error) {
	b, err := read(r, trust, now, lim.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	return b, nil
}

// countingReader counts the compressed bytes consumed.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// boundedReader is the decompressed stream: it fails once the total or the
// compression ratio exceeds the limits, before the data reaches the tar
// reader.
type boundedReader struct {
	z   io.Reader
	in  *countingReader
	out int64
	lim Limits
	err error
	// tail holds the last tarBlock bytes read: right after the tar
	// reader returns a header, the header's raw block.
	tail [tarBlock]byte
}

// keepTail records the last tarBlock bytes of p[:n] after the ones before.
func (b *boundedReader) keepTail(p []byte) {
	if len(p) >= tarBlock {
		copy(b.tail[:], p[len(p)-tarBlock:])
		return
	}
	copy(b.tail[:], b.tail[len(p):])
	copy(b.tail[tarBlock-len(p):], p)
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// Never decompress more than one byte past the total limit.
	if room := b.lim.MaxTotalSize + 1 - b.out; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.z.Read(p)
	b.out += int64(n)
	b.keepTail(p[:n])
	switch {
	case b.out > b.lim.MaxTotalSize:
		b.err = fmt.Errorf("more than %d bytes decompressed: %w", b.lim.MaxTotalSize, ErrTooLarge)
	case b.out > b.lim.RatioFloor && b.out > b.lim.MaxRatio*b.in.n:
		b.err = fmt.Errorf("%d bytes from %d compressed, limit ratio %d: %w", b.out, b.in.n, b.lim.MaxRatio, ErrCompressionRatio)
	}
	if b.err != nil {
		return 0, b.err
	}
	return n, err
}

// streamErr maps errors of the gzip and tar readers to sentinels; errors
// that already are ours pass through.
func streamErr(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrLimit):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %v", ErrTruncated, err)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader),
		errors.As(err, &corrupt), errors.Is(err, tar.ErrHeader),
		errors.Is(err, tar.ErrFieldTooLong), errors.Is(err, tar.ErrInsecurePath):
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	default:
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
}

type memberReader struct {
	tr    *tar.Reader
	dec   *boundedReader
	lim   Limits
	count int
	seen  map[string]bool
	// end is the stream offset where the tar's end marker ends if the
	// archive holds exactly the members seen so far.
	end int64
	// raw is the header block of the member next returned last.
	raw []byte
}

// next returns the next member header after the checks that need no
// manifest: count, type, format, one header block, safe name, duplicate,
// the fields Write never sets. m.raw is then the header's block, for
// checkHeaderBlock once the manifest is known. It returns io.EOF at the
// end of the archive.
func (m *memberReader) next() (*tar.Header, error) {
	start := m.end - 2*tarBlock
	hdr, err := m.tr.Next()
	if err == io.EOF {
		// The tar reader also ends quietly when the stream stops at a
		// header boundary; only a complete end marker is a real end.
		if m.dec.out != m.end {
			return nil, fmt.Errorf("%w: no end-of-archive marker", ErrTruncated)
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, streamErr(err)
	}
	m.count++
	if m.count > m.lim.MaxMembers {
		return nil, fmt.Errorf("more than %d members: %w", m.lim.MaxMembers, ErrTooManyMembers)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("member %q: header field typeflag: %s: %w", hdr.Name, typeName(hdr.Typeflag), ErrNotRegular)
	}
	if len(hdr.PAXRecords) > 0 || hdr.Format&tar.FormatUSTAR == 0 {
		return nil, fmt.Errorf("member %q: header format %v%s: %w", hdr.Name, hdr.Format, paxText(hdr), ErrTarFormat)
	}
	// Exactly one header block: no extension header (PAX, GNU long name)
	// came before it.
	if m.dec.out != start+tarBlock {
		return nil, fmt.Errorf("member %q: header format: %d bytes of headers, want one %d-byte ustar block: %w", hdr.Name, m.dec.out-start, tarBlock, ErrTarFormat)
	}
	m.raw = append(m.raw[:0], m.dec.tail[:]...)
	if err := CheckPath(hdr.Name); err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	if err := checkHeaderFields(hdr); err != nil {
		return nil, err
	}
	if hdr.Size > m.lim.MaxTotalSize {
		return nil, fmt.Errorf("member %q: %d bytes, limit %d in all: %w", hdr.Name, hdr.Size, m.lim.MaxTotalSize, ErrMemberTooLarge)
	}
	if m.seen[hdr.Name] {
		return nil, fmt.Errorf("member %q: %w", hdr.Name, ErrDuplicate)
	}
	m.seen[hdr.Name] = true
	m.end += tarBlock + (hdr.Size+tarBlock-1)/tarBlock*tarBlock
	return hdr, nil
}

// readAll reads the current member, which the header says has size bytes.
// Unless the size is vouched for by the signed manifest (trusted), the
// buffer grows with the data actually read, so a header that merely claims
// a large size costs nothing.
func (m *memberReader) readAll(size int64, trusted bool) ([]byte, error) {
	if trusted {
		buf := make([]byte, size)
		if _, err := io.ReadFull(m.tr, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, streamErr(err)
		}
		return buf, nil
	}
	var buf bytes.Buffer
	buf.Grow(int(min(size, 64<<10)))
	n, err := buf.ReadFrom(io.LimitReader(m.tr, size))
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, streamErr(err)
	}
	return buf.Bytes(), nil
}

// paxText lists a header's PAX record keys, if any.
func paxText(h *tar.Header) string {
	if len(h.PAXRecords) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(h.PAXRecords))
	return fmt.Sprintf(" with PAX records %q", keys)
}

func typeName(t byte) string {
	switch t {
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("type %q", t)
}

// read reads a bundle in four steps, each trusting only what the steps
// before it verified: the signed manifest, the manifest and the headers
// read so far, the payload in manifest order, and the end of the stream.
func read(r io.Reader, trust *sign.Trust, now time.Time, lim Limits) (*Bundle, error) {
	in := &countingReader{r: r}
	br := bufio.NewReaderSize(in, 32<<10)
	zr, err := gzip.NewReader(br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, gzip.ErrHeader) {
			return nil, fmt.Errorf("%w: %v", ErrNotGzip, err)
		}
		return nil, streamErr(err)
	}
	zr.Multistream(false)
	dec := &boundedReader{z: zr, in: in, lim: lim}
	mr := &memberReader{tr: tar.NewReader(dec), dec: dec, lim: lim, seen: map[string]bool{}, end: 2 * tarBlock}

	// 1. The manifest and its signature, verified before anything else.
	sm, err := readSigned(mr, trust)
	if err != nil {
		return nil, err
	}
	// 2. The manifest: authentic now, so it may be parsed.
	m, err := sm.check(zr.Header, now, lim)
	if err != nil {
		return nil, err
	}
	// 3. The payload, member by member in manifest order.
	b := &Bundle{
		Manifest:       *m,
		ManifestBytes:  sm.manifest,
		Signature:      sm.sigText,
		Signer:         sm.sig.KeyID,
		TrustedComment: sm.sig.TrustedComment,
	}
	if b.Files, err = readPayload(mr, m); err != nil {
		return nil, err
	}
	// 4. Nothing may follow.
	if err := checkEnd(dec, br); err != nil {
		return nil, err
	}
	return b, nil
}

// signedManifest are the two leading members, the signature verified:
// the manifest's bytes and the signature, with the raw tar headers of both
// (checked once the manifest says what they must be).
type signedManifest struct {
	manifestHdr, sigHdr *tar.Header
	manifestRaw, sigRaw []byte
	manifest, sigText   []byte
	sig                 minisign.Signature
}

// readSigned reads the manifest and its signature, the first two members,
// and verifies the signature with a trusted key. Nothing is parsed before.
func readSigned(mr *memberReader, trust *sign.Trust) (*signedManifest, error) {
	var sm signedManifest
	hdr, err := mr.next()
	if err == io.EOF {
		return nil, fmt.Errorf("empty archive: %w", ErrNoManifest)
	}
	if err != nil {
		return nil, err
	}
	if hdr.Name != ManifestName {
		return nil, fmt.Errorf("first member %q: %w", hdr.Name, ErrNoManifest)
	}
	if hdr.Size > maxManifestSize {
		return nil, fmt.Errorf("manifest of %d bytes, limit %d: %w", hdr.Size, maxManifestSize, ErrMemberTooLarge)
	}
	sm.manifestHdr, sm.manifestRaw = hdr, bytes.Clone(mr.raw)
	if sm.manifest, err = mr.readAll(hdr.Size, false); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	hdr, err = mr.next()
	if err == io.EOF {
		return nil, fmt.Errorf("no signature member: %w", ErrUnsigned)
	}
	if err != nil {
		return nil, err
	}
	if hdr.Name != SignatureName {
		return nil, fmt.Errorf("second member %q, want %s: %w", hdr.Name, SignatureName, ErrUnsigned)
	}
	if hdr.Size > maxSignatureSize {
		return nil, fmt.Errorf("signature of %d bytes, limit %d: %w", hdr.Size, maxSignatureSize, ErrMemberTooLarge)
	}
	sm.sigHdr, sm.sigRaw = hdr, bytes.Clone(mr.raw)
	if sm.sigText, err = mr.readAll(hdr.Size, false); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if err := sm.verify(trust); err != nil {
		return nil, err
	}
	return &sm, nil
}

// verify checks the signature of the manifest with the trusted key it
// names.
func (sm *signedManifest) verify(trust *sign.Trust) error {
	if err := sm.sig.UnmarshalText(sm.sigText); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedSignature, err)
	}
	pub, err := trust.Lookup(sm.sig.KeyID)
	if err != nil {
		return err
	}
	if !minisign.Verify(pub, sm.manifest, sm.sigText) {
		return fmt.Errorf("manifest signature by key %s: %w", sign.FormatKeyID(sm.sig.KeyID), ErrBadSignature)
	}
	return nil
}

// check parses the verified manifest and checks it against the signature
// (trusted comment, key), the time and the limits; then the gzip header
// and the two tar headers read so far, now that the creation time they
// must carry is known and signed.
func (sm *signedManifest) check(gz gzip.Header, now time.Time, lim Limits) (*Manifest, error) {
	m, err := decodeManifest(sm.manifest)
	if err != nil {
		return nil, err
	}
	if want := TrustedComment(m.Serial, sm.manifest); sm.sig.TrustedComment != want {
		return nil, fmt.Errorf("trusted comment %q, want %q: %w", sm.sig.TrustedComment, want, ErrTrustedComment)
	}
	if m.KeyID != sign.FormatKeyID(sm.sig.KeyID) {
		return nil, fmt.Errorf("manifest key id %s, signed by %s: %w", m.KeyID, sign.FormatKeyID(sm.sig.KeyID), ErrKeyMismatch)
	}
	if m.Expires != nil && !now.IsZero() && !now.Before(*m.Expires) {
		return nil, fmt.Errorf("expired at %s: %w", m.Expires.Format(time.RFC3339), ErrExpired)
	}
	if err := m.check(lim); err != nil {
		return nil, err
	}
	if err := checkGzipHeader(gz, m.Created); err != nil {
		return nil, err
	}
	if err := checkHeaderBlock(sm.manifestHdr, sm.manifestRaw, m.Created); err != nil {
		return nil, err
	}
	if err := checkHeaderBlock(sm.sigHdr, sm.sigRaw, m.Created); err != nil {
		return nil, err
	}
	return m, nil
}

// readPayload reads the payload members: exactly the manifest's files, in
// its order, each header what the manifest implies, each of its size and
// hash.
func readPayload(mr *memberReader, m *Manifest) ([]File, error) {
	index := make(map[string]int, len(m.Files))
	for i, f := range m.Files {
		index[f.Path] = i
	}
	files := make([]File, 0, len(m.Files))
	for {
		hdr, err := mr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := checkHeaderBlock(hdr, mr.raw, m.Created); err != nil {
			return nil, err
		}
		i, ok := index[hdr.Name]
		if !ok {
			return nil, fmt.Errorf("member %q: %w", hdr.Name, ErrUnexpectedMember)
		}
		if i != len(files) {
			return nil, fmt.Errorf("member %q at position %d, manifest position %d: %w", hdr.Name, len(files), i, ErrMemberOrder)
		}
		want := m.Files[i]
		if hdr.Size != want.Size {
			return nil, fmt.Errorf("member %q: %d bytes, manifest says %d: %w", hdr.Name, hdr.Size, want.Size, ErrSizeMismatch)
		}
		data, err := mr.readAll(hdr.Size, true)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", hdr.Name, err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != want.SHA256 {
			return nil, fmt.Errorf("member %q: %w", hdr.Name, ErrHashMismatch)
		}
		files = append(files, File{Path: hdr.Name, Data: data})
	}
	if len(files) != len(m.Files) {
		return nil, fmt.Errorf("%d files missing, first %q: %w", len(m.Files)-len(files), m.Files[len(files)].Path, ErrMissingMember)
	}
	return files, nil
}

// checkEnd checks that nothing follows the tar end: not inside the gzip
// stream, not after it. Reading to the end also checks the gzip CRC.
func checkEnd(dec io.Reader, br *bufio.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(dec, one[:])
	if n > 0 {
		return fmt.Errorf("after the tar end: %w", ErrTrailingData)
	}
	if err != io.EOF {
		return streamErr(err)
	}
	if n, _ := io.ReadFull(br, one[:]); n > 0 {
		return fmt.Errorf("after the gzip stream: %w", ErrTrailingData)
	}
	return nil
}
