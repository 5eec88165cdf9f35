package testbed

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestProxyHeaderRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		src, dst string
		v1       bool
	}{
		{"v2 ipv4", "198.51.100.77:4321", "192.0.2.20:3200", false},
		{"v2 ipv6", "[2001:db8:c::2]:40000", "[2001:db8:20::20]:25", false},
		{"v1 ipv4", "198.51.100.77:4321", "192.0.2.20:3200", true},
		{"v1 ipv6", "[2001:db8:c::2]:40000", "[2001:db8:20::20]:25", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
			var hdr []byte
			if c.v1 {
				hdr = appendProxyV1(nil, src, dst)
			} else {
				hdr = appendProxyV2(nil, src, dst)
			}
			r := bufio.NewReader(io.MultiReader(bytes.NewReader(hdr), strings.NewReader("HELLO")))
			h, err := readProxyHeader(r)
			if err != nil {
				t.Fatal(err)
			}
			want := 2
			if c.v1 {
				want = 1
			}
			if h == nil || h.Version != want || h.Src != src || h.Dst != dst || h.Local {
				t.Fatalf("got %+v, want v%d %s -> %s", h, want, src, dst)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != "HELLO" {
				t.Errorf("data after the header: %q", rest)
			}
		})
	}
}

func TestProxyHeaderAbsentOrLocal(t *testing.T) {
	v2local := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x20, 0x00, 0x00, 0x00)
	v2tlv := appendProxyV2(nil, netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:2"))
	v2tlv[15] += 5 // five bytes of TLV after the addresses
	v2tlv = append(v2tlv, 0x03, 0x00, 0x02, 0xab, 0xcd)
	cases := []struct {
		name, in string
		want     string // String() of the header
		rest     string // what stays for the application
	}{
		{"http get", "GET / HTTP/1.1\r\n\r\n", "none", "GET / HTTP/1.1\r\n\r\n"},
		{"http post", "POST / HTTP/1.1\r\n", "none", "POST / HTTP/1.1\r\n"},
		{"short put", "PUT /x", "none", "PUT /x"},
		{"bare crlf", "\r\n", "none", "\r\n"}, // peeking the signature fails
		{"v1 unknown", "PROXY UNKNOWN\r\nX", "local", "X"},
		{"v2 local", string(v2local) + "X", "local", "X"},
		{"v2 with TLV", string(v2tlv) + "X", "192.0.2.1:1", "X"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(c.in))
			h, err := readProxyHeader(r)
			if c.name == "bare crlf" {
				if !errors.Is(err, errProxyHeader) {
					t.Fatalf("err %v, want errProxyHeader", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.String() != c.want {
				t.Errorf("header %q, want %q", h.String(), c.want)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != c.rest {
				t.Errorf("rest %q, want %q", rest, c.rest)
			}
		})
	}
}

func TestProxyHeaderMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"v1 bad family":   "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"v1 bad address":  "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"v1 mixed family": "PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n",
		"v1 bad port":     "PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n",
		"v1 no crlf":      "PROXY TCP4 " + strings.Repeat("1", 120),
		"v2 truncated":    "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x01\x02",
		"v2 version 3":    "\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x00",
		"v2 short ipv4":   "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04abcd",
	} {
		t.Run(name, func(t *testing.T) {
			h, err := readProxyHeader(bufio.NewReader(strings.NewReader(in)))
			if !errors.Is(err, errProxyHeader) {
				t.Errorf("got %+v, %v; want errProxyHeader", h, err)
			}
		})
	}
}
