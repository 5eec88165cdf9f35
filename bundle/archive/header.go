package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"time"
)

// A member header carries nothing the signed manifest does not: it is a
// function of the member's name and size and of the manifest's creation
// time. memberHeader is that function; Write writes its output and Read
// accepts a header block only when it is byte for byte the block
// memberHeader gives for the name, size and time the manifest states, so the
// signature covers every header byte. Nothing a header could say beyond the
// manifest (a mode bit, an owner, a link, a device, an extension record)
// survives to disk or to a tar(1) run by hand.

// memberMode is the only mode a member may have.
const memberMode = 0o644

// gzipOS is the gzip header's OS byte Write sets ("unknown").
const gzipOS = 255

// memberHeader is the tar header Write writes for a member.
func memberHeader(name string, size int64, created time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     memberMode,
		ModTime:  created,
		Format:   tar.FormatUSTAR,
	}
}

// headerBlock is the 512-byte tar header block of memberHeader.
func headerBlock(name string, size int64, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(memberHeader(name, size, created)); err != nil {
		return nil, err
	}
	if buf.Len() < tarBlock {
		return nil, fmt.Errorf("tar header of %q: %d bytes", name, buf.Len())
	}
	return buf.Bytes()[:tarBlock], nil
}

// ustarFields names the fields of a USTAR header block by their byte
// ranges, so a difference can name the field.
var ustarFields = []struct {
	name     string
	from, to int
}{
	{"name", 0, 100}, {"mode", 100, 108}, {"uid", 108, 116}, {"gid", 116, 124},
	{"size", 124, 136}, {"mtime", 136, 148}, {"chksum", 148, 156}, {"typeflag", 156, 157},
	{"linkname", 157, 257}, {"magic", 257, 263}, {"version", 263, 265}, {"uname", 265, 297},
	{"gname", 297, 329}, {"devmajor", 329, 337}, {"devminor", 337, 345}, {"prefix", 345, 500},
	{"padding", 500, 512},
}

func fieldAt(off int) string {
	for _, f := range ustarFields {
		if off >= f.from && off < f.to {
			return f.name
		}
	}
	return fmt.Sprintf("byte %d", off)
}

// headerErr is a refusal of a member header naming the member and field.
func headerErr(member, field, format string, args ...any) error {
	return fmt.Errorf("member %q: header field %s: %s: %w", member, field, fmt.Sprintf(format, args...), ErrHeader)
}

// modeText describes a mode with its special bits spelled out.
func modeText(mode int64) string {
	s := fmt.Sprintf("%#o", mode)
	var special []string
	for _, b := range []struct {
		bit  int64
		name string
	}{{0o4000, "setuid"}, {0o2000, "setgid"}, {0o1000, "sticky"}, {0o111, "executable"}, {0o022, "group/other writable"}} {
		if mode&b.bit != 0 {
			special = append(special, b.name)
		}
	}
	if mode&^0o7777 != 0 {
		special = append(special, "file type bits")
	}
	if len(special) > 0 {
		s += fmt.Sprintf(" (%s)", strings.Join(special, ", "))
	}
	return s
}

// checkHeaderFields checks the parsed fields a header may not set, with a
// message that says what was found. It runs before the manifest is known;
// the time is checked with the raw block in checkHeaderBlock.
func checkHeaderFields(h *tar.Header) error {
	switch {
	case h.Mode != memberMode:
		return headerErr(h.Name, "mode", "%s, want %#o", modeText(h.Mode), memberMode)
	case h.Uid != 0:
		return headerErr(h.Name, "uid", "%d, want 0", h.Uid)
	case h.Gid != 0:
		return headerErr(h.Name, "gid", "%d, want 0", h.Gid)
	case h.Uname != "":
		return headerErr(h.Name, "uname", "%q, want none", h.Uname)
	case h.Gname != "":
		return headerErr(h.Name, "gname", "%q, want none", h.Gname)
	case h.Linkname != "":
		return headerErr(h.Name, "linkname", "%q, want none", h.Linkname)
	case h.Devmajor != 0 || h.Devminor != 0:
		return headerErr(h.Name, "devmajor", "device %d,%d, want none", h.Devmajor, h.Devminor)
	case !h.AccessTime.IsZero() || !h.ChangeTime.IsZero():
		return headerErr(h.Name, "mtime", "access or change time set, want none")
	}
	return nil
}

// checkHeaderBlock compares a member's raw header block with the one Write
// makes from the manifest's name, size and creation time.
func checkHeaderBlock(h *tar.Header, raw []byte, created time.Time) error {
	if !h.ModTime.Equal(created) {
		return headerErr(h.Name, "mtime", "%s, want the manifest's creation time %s",
			h.ModTime.UTC().Format(time.RFC3339), created.Format(time.RFC3339))
	}
	want, err := headerBlock(h.Name, h.Size, created)
	if err != nil {
		return headerErr(h.Name, "name", "%v", err)
	}
	// The checksum follows from the other bytes: name a field that differs
	// before it.
	first := -1
	for i := range want {
		if raw[i] != want[i] {
			if fieldAt(i) != "chksum" {
				first = i
				break
			}
			if first < 0 {
				first = i
			}
		}
	}
	if first >= 0 {
		return headerErr(h.Name, fieldAt(first), "byte %d is %#02x, lbctl build writes %#02x", first, raw[first], want[first])
	}
	return nil
}

// checkGzipHeader checks that the gzip header is the one Write writes: no
// name, comment or extra field, OS unknown, the manifest's creation time.
func checkGzipHeader(h gzip.Header, created time.Time) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("gzip header field %s: %s: %w", field, fmt.Sprintf(format, args...), ErrHeader)
	}
	switch {
	case h.Name != "":
		return bad("name", "%q, want none", h.Name)
	case h.Comment != "":
		return bad("comment", "%q, want none", h.Comment)
	case h.Extra != nil:
		return bad("extra", "%d bytes, want none", len(h.Extra))
	case h.OS != gzipOS:
		return bad("os", "%d, want %d", h.OS, gzipOS)
	case !h.ModTime.Equal(created):
		return bad("mtime", "%s, want the manifest's creation time %s", h.ModTime.UTC().Format(time.RFC3339), created.Format(time.RFC3339))
	}
	return nil
}
