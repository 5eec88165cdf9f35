package bird

import (
	"bufio"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readTestReply(t *testing.T, name string) *Reply {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r, err := readReply(bufio.NewReader(strings.NewReader(string(data))))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestReadReplyCodes(t *testing.T) {
	tests := []struct {
		file  string
		code  int
		text  string
		lines int
	}{
		{"greeting.txt", CodeWelcome, "BIRD 2.0.12 ready.", 1},
		{"lb_configure.txt", CodeReconfigured, "Reconfigured", 2},
		{"lb_configure_in_progress.txt", CodeReconfigInProgress, "Reconfiguration in progress", 2},
		{"lb_configure_check.txt", CodeConfigOK, "Configuration OK", 2},
		{"lb_configure_error.txt", CodeConfigFileError, "/etc/bird/announce4.conf:3:7 Invalid IPv4 address 192.0.2.300", 2},
		{"lb_show_route_nosuch.txt", CodeParseError, "syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN", 1},
		{"lb_show_route_protocol_vips4_empty.txt", CodeOK, "", 1},
		{"lb_disable_vips4.txt", CodeOK, "", 2},
		{"lb_show_status.txt", CodeStatusReport, "Daemon is up and running", 7},
		{"lb_show_protocols_all_rr1.txt", CodeOK, "", 55},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r := readTestReply(t, tt.file)
			if r.Code() != tt.code || r.Text() != tt.text || len(r.Lines) != tt.lines {
				t.Errorf("got code %04d text %q lines %d, want %04d %q %d", r.Code(), r.Text(), len(r.Lines), tt.code, tt.text, tt.lines)
			}
		})
	}
}

func TestReadReplyContinuationCodes(t *testing.T) {
	r := readTestReply(t, "lb_show_status.txt")
	want := []Line{
		{1000, "BIRD 2.0.12"},
		{1011, "Router ID is 198.51.100.1"},
		{1011, "Hostname is vm"},
		{1011, "Current server time is 2026-11-24 16:27:02.732"},
		{1011, "Last reboot on 2026-11-24 16:26:31.086"},
		{1011, "Last reconfiguration on 2026-11-24 16:27:02.555"},
		{13, "Daemon is up and running"},
	}
	if !slices.Equal(r.Lines, want) {
		t.Errorf("lines:\n%v\nwant\n%v", r.Lines, want)
	}
}

func TestReadReplyMalformed(t *testing.T) {
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\n",
		" continuation first\n0000 \n",
		"12a4 x\n",
		"0001-unterminated\n",
		"",
	} {
		_, err := readReply(bufio.NewReader(strings.NewReader(in)))
		switch {
		case in == "" && errors.Is(err, io.EOF):
		case strings.HasPrefix(in, "0001-") && errors.Is(err, io.ErrUnexpectedEOF):
		case errors.Is(err, ErrProtocol):
		default:
			t.Errorf("%q: got %v", in, err)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		file string
		want []netip.Prefix
	}{
		{"lb_show_route_protocol_vips4.txt", prefixes(t, "192.0.2.10/32", "192.0.2.11/32")},
		{"lb_show_route_protocol_vips6.txt", prefixes(t, "2001:db8::10/128")},
		{"lb_show_route_protocol_vips4_empty.txt", nil},
		{"lb_show_route_export_rr1.txt", prefixes(t, "192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128")},
		{"rr_show_route.txt", prefixes(t, "192.0.2.10/32", "192.0.2.11/32", "198.51.100.0/24", "2001:db8::10/128", "2001:db8:100::/64")},
		{"rr_show_route_protocol_lb1.txt", prefixes(t, "192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128")},
		{"rr_show_route_all.txt", prefixes(t, "192.0.2.10/32", "192.0.2.11/32", "198.51.100.0/24", "2001:db8::10/128", "2001:db8:100::/64")},
		{"synthetic_show_route_multi.txt", prefixes(t, "192.0.2.10/32", "2001:db8::10/128", "2001:db8::11/128")},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := parseRoutes(readTestReply(t, tt.file))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseProtocols(t *testing.T) {
	tests := []struct {
		file string
		want []Protocol
	}{
		{"lb_show_protocols.txt", []Protocol{
			{"device1", "Device", "---", "up", "16:26:31.086", ""},
			{"vips4", "Static", "master4", "up", "16:26:41.569", ""},
			{"vips6", "Static", "master6", "up", "16:26:31.086", ""},
			{"bfd1", "BFD", "---", "up", "16:26:31.086", ""},
			{"rr1", "BGP", "---", "up", "16:26:47.457", "Established"},
		}},
		{"lb_show_protocols_active.txt", []Protocol{
			{"device1", "Device", "---", "up", "16:26:31.086", ""},
			{"vips4", "Static", "master4", "up", "16:27:03.260", ""},
			{"vips6", "Static", "master6", "up", "16:26:31.086", ""},
			{"bfd1", "BFD", "---", "up", "16:26:31.086", ""},
			{"rr1", "BGP", "---", "start", "16:27:03.531", "Active"},
		}},
		{"lb_show_protocols_all_rr1.txt", []Protocol{
			{"rr1", "BGP", "---", "up", "16:26:47.457", "Established"},
		}},
		{"synthetic_show_protocols_iso_long.txt", []Protocol{
			{"device1", "Device", "---", "up", "2026-11-24 16:26:31", ""},
			{"a_long_protocol_name", "Static", "master4", "up", "2026-11-24 16:26:41", ""},
			{"rr_reflector_1", "BGP", "---", "start", "2026-11-24 16:27:03", "Active        Socket: Connection refused"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseProtocols(readTestReply(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
	r := readTestReply(t, "lb_show_protocols.txt")
	ps, _ := parseProtocols(r)
	if !ps[4].Established() || ps[1].Established() || !ps[1].Up() {
		t.Errorf("Established/Up wrong: %+v", ps)
	}
	r = readTestReply(t, "lb_show_protocols_active.txt")
	ps, _ = parseProtocols(r)
	if ps[4].Established() || ps[4].Up() {
		t.Errorf("Active session reported established or up: %+v", ps[4])
	}
}

func TestParseStatus(t *testing.T) {
	st, err := parseStatus(readTestReply(t, "lb_show_status.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if st != (Status{Version: "BIRD 2.0.12", RouterID: "198.51.100.1", Message: "Daemon is up and running"}) || st.Reconfiguring() {
		t.Errorf("got %+v", st)
	}
	st, err = parseStatus(readTestReply(t, "synthetic_show_status_reconfiguring.txt"))
	if err != nil || !st.Reconfiguring() || st.ShuttingDown() {
		t.Errorf("got %+v, %v", st, err)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"vips4", "_x", "rr1", "A_b9"} {
		if err := checkName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "4vips", "vips4; configure", "a b", "a\nb", "'x'", "all-x"} {
		if err := checkName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
