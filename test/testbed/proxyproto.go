package testbed

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// proxyHeader is a decoded PROXY protocol header (v1 text or v2 binary).
type proxyHeader struct {
	// Version is 1 or 2.
	Version int
	// Local is true for v2 LOCAL commands and v1 "UNKNOWN": the connection
	// carries no client address (HAProxy's own health checks, for one).
	Local bool
	// Src and Dst are the client's and the proxied-to addresses.
	Src, Dst netip.AddrPort
}

// String is "ip:port" of the client, or "local".
func (h *proxyHeader) String() string {
	if h == nil {
		return "none"
	}
	if h.Local {
		return "local"
	}
	return h.Src.String()
}

// proxyV2Sig starts every PROXY protocol v2 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// errProxyHeader is returned for a malformed PROXY protocol header.
var errProxyHeader = errors.New("malformed PROXY protocol header")

// readProxyHeader reads a PROXY protocol header from r if the data starts
// with one, and returns nil without consuming anything otherwise. It peeks
// only as far as needed to tell (one byte, then the signature), so it works
// before protocols where the client speaks first (HTTP); for protocols
// where the server speaks first, set a read deadline before calling it and
// treat a timeout with nothing read as "no header".
func readProxyHeader(r *bufio.Reader) (*proxyHeader, error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, err
	}
	switch first[0] {
	case 'P':
		p, err := r.Peek(6)
		if err != nil || string(p) != "PROXY " {
			return nil, nil // short or another protocol ("POST /", "PUT /x")
		}
		return readProxyV1(r)
	case '\r':
		p, err := r.Peek(len(proxyV2Sig))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errProxyHeader, err)
		}
		if !bytes.Equal(p, proxyV2Sig) {
			return nil, nil
		}
		return readProxyV2(r)
	}
	return nil, nil
}

// readProxyV1 reads "PROXY TCP4 src dst sport dport\r\n" (at most 107 bytes).
func readProxyV1(r *bufio.Reader) (*proxyHeader, error) {
	var line []byte
	for len(line) < 107 {
		c, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: v1: %v", errProxyHeader, err)
		}
		line = append(line, c)
		if c == '\n' {
			break
		}
	}
	s, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return nil, fmt.Errorf("%w: v1: no CRLF within 107 bytes", errProxyHeader)
	}
	f := strings.Split(s, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return &proxyHeader{Version: 1, Local: true}, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return nil, fmt.Errorf("%w: v1: %q", errProxyHeader, s)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sp, err3 := strconv.ParseUint(f[4], 10, 16)
	dp, err4 := strconv.ParseUint(f[5], 10, 16)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("%w: v1: %q: %v", errProxyHeader, s, err)
	}
	if (f[1] == "TCP4") != (src.Is4() && dst.Is4()) {
		return nil, fmt.Errorf("%w: v1: %q: family and addresses disagree", errProxyHeader, s)
	}
	return &proxyHeader{Version: 1, Src: netip.AddrPortFrom(src, uint16(sp)), Dst: netip.AddrPortFrom(dst, uint16(dp))}, nil
}

// readProxyV2 reads the binary header: signature, version/command,
// family/protocol, length, addresses and TLVs (skipped).
func readProxyV2(r *bufio.Reader) (*proxyHeader, error) {
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%w: v2: %v", errProxyHeader, err)
	}
	verCmd, fam := hdr[12], hdr[13]
	n := int(binary.BigEndian.Uint16(hdr[14:16]))
	if verCmd>>4 != 2 {
		return nil, fmt.Errorf("%w: v2: version %d", errProxyHeader, verCmd>>4)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: v2: %d-byte body: %v", errProxyHeader, n, err)
	}
	h := &proxyHeader{Version: 2}
	switch verCmd & 0xf {
	case 0: // LOCAL
		h.Local = true
		return h, nil
	case 1: // PROXY
	default:
		return nil, fmt.Errorf("%w: v2: command %d", errProxyHeader, verCmd&0xf)
	}
	switch fam {
	case 0x11, 0x12: // TCP4, UDP4
		if n < 12 {
			return nil, fmt.Errorf("%w: v2: IPv4 body of %d bytes", errProxyHeader, n)
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	case 0x21, 0x22: // TCP6, UDP6
		if n < 36 {
			return nil, fmt.Errorf("%w: v2: IPv6 body of %d bytes", errProxyHeader, n)
		}
		src := netip.AddrFrom16([16]byte(body[0:16]))
		dst := netip.AddrFrom16([16]byte(body[16:32]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	case 0x00: // UNSPEC
		h.Local = true
	default:
		return nil, fmt.Errorf("%w: v2: family/protocol 0x%02x", errProxyHeader, fam)
	}
	return h, nil
}

// appendProxyV2 appends a PROXY protocol v2 header for a TCP connection
// from src to dst (both IPv4 or both IPv6).
func appendProxyV2(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, proxyV2Sig...)
	b = append(b, 0x21) // version 2, PROXY
	if src.Addr().Is4() {
		b = append(b, 0x11, 0, 12)
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		b = append(b, 0x21, 0, 36)
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// appendProxyV1 appends a PROXY protocol v1 header.
func appendProxyV1(b []byte, src, dst netip.AddrPort) []byte {
	fam := "TCP4"
	if src.Addr().Is6() {
		fam = "TCP6"
	}
	return fmt.Appendf(b, "PROXY %s %s %s %d %d\r\n", fam, src.Addr(), dst.Addr(), src.Port(), dst.Port())
}
