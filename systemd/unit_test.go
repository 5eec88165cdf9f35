package systemd

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// directives parses a unit file into key -> values (in order).
func directives(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("bad unit line %q", l)
		}
		out[k] = append(out[k], v)
	}
	return out
}

func TestPackagingCopyIsIdentical(t *testing.T) {
	b, err := os.ReadFile("../packaging/systemd/" + TemplateName)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != Template() {
		t.Fatalf("packaging/systemd/%s differs from systemd/units/%s (the source of truth): "+
			"cp systemd/units/%s packaging/systemd/", TemplateName, TemplateName, TemplateName)
	}
}

func TestTemplate(t *testing.T) {
	d := directives(t, Template())
	cfg := ConfigPath("%i")
	want := map[string][]string{
		"Type":                     {"notify"},
		"User":                     {"haproxy"},
		"Group":                    {"haproxy"},
		"RuntimeDirectory":         {strings.TrimPrefix(RuntimeDir("%i"), "/run/")},
		"ExecStartPre":             nil, // lbctl install checked the config; HAProxy refuses a broken one at start
		"ExecStart":                {"/usr/sbin/haproxy -Ws -f " + cfg + " -p " + PIDFile("%i") + " -S " + MasterSocket("%i")},
		"ExecReload":               {"/usr/sbin/haproxy -c -f " + cfg, "/bin/kill -USR2 $MAINPID"},
		"KillMode":                 {"mixed"},
		"Restart":                  {"on-failure"},
		"AmbientCapabilities":      {"CAP_NET_BIND_SERVICE"},
		"CapabilityBoundingSet":    {"CAP_NET_BIND_SERVICE"},
		"NoNewPrivileges":          {"yes"},
		"ProtectSystem":            {"strict"},
		"ReadWritePaths":           {RuntimeDir("%i")},
		"ReadOnlyPaths":            {"-/etc/lbctl"},
		"ProtectHome":              {"yes"},
		"PrivateTmp":               {"yes"},
		"PrivateDevices":           {"yes"},
		"ProtectKernelTunables":    {"yes"},
		"ProtectKernelModules":     {"yes"},
		"ProtectKernelLogs":        {"yes"},
		"ProtectControlGroups":     {"yes"},
		"ProtectClock":             {"yes"},
		"ProtectHostname":          {"yes"},
		"RestrictAddressFamilies":  {"AF_INET AF_INET6 AF_UNIX"},
		"RestrictNamespaces":       {"yes"},
		"LockPersonality":          {"yes"},
		"RestrictRealtime":         {"yes"},
		"RestrictSUIDSGID":         {"yes"},
		"SystemCallArchitectures":  {"native"},
		"SystemCallFilter":         {"@system-service", "~@privileged"},
		"UMask":                    {"0077"},
		"MemoryDenyWriteExecute":   nil, // breaks PCRE2 JIT, see the unit
		"PrivateNetwork":           nil, // it is a load balancer
		"PrivateUsers":             nil, // would void CAP_NET_BIND_SERVICE in the host netns
		"DynamicUser":              nil,
		"RuntimeDirectoryPreserve": nil,
	}
	for k, v := range want {
		if got := d[k]; strings.Join(got, "\n") != strings.Join(v, "\n") {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestTransparentDropIn(t *testing.T) {
	d := directives(t, TransparentDropIn())
	if strings.Join(d["AmbientCapabilities"], " ") != "CAP_NET_ADMIN" ||
		strings.Join(d["CapabilityBoundingSet"], " ") != "CAP_NET_ADMIN" || len(d) != 2 {
		t.Errorf("drop-in directives %v, want exactly CAP_NET_ADMIN added to both sets", d)
	}
	if !strings.Contains(TransparentDropIn(), "[Service]") {
		t.Error("drop-in has no [Service] section")
	}
}

func TestValidateInstance(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  string
	}{
		{"192.0.2.10", ""},
		{"2001-db8--10", ""},
		{"web_1.example", ""},
		{"", "empty"},
		{".hidden", "starts with"},
		{"-x", "starts with"},
		{"a/b", `'/' at offset 1`},
		{"a b", `' ' at offset 1`},
		{"a@b", `'@' at offset 1`},
		{"2001:db8::1", `':' at offset 4`},
		{"a\\x2db", `'\\' at offset 1`},
		{strings.Repeat("a", MaxInstanceLen), ""},
		{strings.Repeat("a", MaxInstanceLen+1), "longer than"},
	} {
		err := ValidateInstance(tc.name)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInstanceName)):
			t.Errorf("%q: error %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestUnitName(t *testing.T) {
	if got := UnitName("192.0.2.10"); got != "lb-haproxy@192.0.2.10.service" {
		t.Fatalf("UnitName = %q", got)
	}
	for unit, want := range map[string]string{
		"lb-haproxy@192.0.2.10.service": "192.0.2.10",
		"lb-haproxy@.service":           "",
		"lb-haproxy@a/b.service":        "",
		"haproxy.service":               "",
		"lb-haproxy@x.socket":           "",
	} {
		got, ok := InstanceOf(unit)
		if got != want || ok != (want != "") {
			t.Errorf("InstanceOf(%q) = %q, %v", unit, got, ok)
		}
	}
	if DropInDir("x") != "lb-haproxy@x.service.d" {
		t.Errorf("DropInDir = %q", DropInDir("x"))
	}
}

// TestSecurityExposure runs systemd-analyze security offline on the unit
// files as written, for a plain and a transparent instance.
func TestSecurityExposure(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("needs systemd-analyze")
	}
	root := t.TempDir()
	files, err := Files([]Instance{{Name: "demo"}, {Name: "tdemo", Transparent: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (UnitWriter{Dir: filepath.Join(root, UnitDir)}).Sync(files); err != nil {
		t.Fatal(err)
	}
	for _, vip := range []string{"demo", "tdemo"} {
		exp := analyzeSecurity(t, root, UnitName(vip))
		t.Logf("%s: exposure %.1f", UnitName(vip), exp)
		if exp > 2.5 {
			t.Errorf("%s: exposure %.1f, want <= 2.5", UnitName(vip), exp)
		}
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func analyzeSecurity(t *testing.T, root, unit string) float64 {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "systemd-analyze", "security", "--no-pager",
		"--offline=true", "--root="+root, unit).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
