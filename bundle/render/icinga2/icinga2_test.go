package icinga2_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/icinga2"
	"github.com/lbctl/lbctl/bundle/render/internal/rendertest"
)

func TestGolden(t *testing.T) {
	files, err := icinga2.Render(rendertest.Site(), icinga2.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rendertest.GoldenFiles(t, "lab", files)
}

func TestRejectsBangInNames(t *testing.T) {
	site := rendertest.Site()
	site.Services[0].Name = "erp!app"
	site.VIPs[3].Services = []string{"erp!app"}
	if _, err := icinga2.Render(site, icinga2.Options{}); err == nil || !strings.Contains(err.Error(), "'!'") {
		t.Errorf("err = %v", err)
	}
}

// testMain is the Icinga 2 main configuration the check runs with: the
// template library and plugin commands, stand-ins for Debian's notification
// commands, and the rendered directory.
const testMain = `const PluginDir = "/usr/lib/nagios/plugins"
const ManubulonPluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "/usr/lib/nagios/plugins"
const NodeName = "lbctl-test"
const ZoneName = "lbctl-test"
const TicketSalt = ""
include <itl>
include <plugins>
object NotificationCommand "mail-host-notification" { command = [ "/bin/true" ] }
object NotificationCommand "mail-service-notification" { command = [ "/bin/true" ] }
include_recursive %q
`

// TestIcingaAccepts validates the rendered objects with "icinga2 daemon -C"
// (skipped when icinga2 is not installed).
func TestIcingaAccepts(t *testing.T) {
	bin := rendertest.NeedTool(t, "icinga2")
	for name, site := range map[string]*model.Site{"lab": rendertest.Site(), "campus": rendertest.Campus(t)} {
		files, err := icinga2.Render(site, icinga2.Options{})
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "lbctl-icinga2-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		// icinga2 drops root privileges before reading the configuration.
		os.Chmod(dir, 0o755)
		conf := filepath.Join(dir, "lbctl")
		m := map[string][]byte{"icinga2.conf": []byte(fmt.Sprintf(testMain, conf))}
		for _, f := range files {
			m["lbctl/"+f.Path] = f.Data
		}
		rendertest.WriteFiles(t, dir, m)
		out, err := rendertest.Run(bin, "daemon", "-C", "-c", filepath.Join(dir, "icinga2.conf"))
		if err != nil || !strings.Contains(out, "Finished validating the configuration") {
			t.Errorf("%s: icinga2 daemon -C: %v\n%s", name, err, out)
			continue
		}
		hosts, services := 0, 0
		for _, f := range files {
			hosts += strings.Count(string(f.Data), "object Host ")
			services += strings.Count(string(f.Data), "object Service ")
		}
		for _, want := range []string{fmt.Sprintf("%d Hosts.", hosts), fmt.Sprintf("%d Services.", services)} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: icinga2 did not report %q:\n%s", name, want, out)
			}
		}
	}
}
