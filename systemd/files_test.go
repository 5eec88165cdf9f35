package systemd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

func names(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

func TestFiles(t *testing.T) {
	files, err := Files(Instances([]model.VIP{
		{Name: "192.0.2.20", Transparent: true},
		{Name: "192.0.2.10"},
		{Name: "2001-db8--5", Transparent: true},
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"lb-haproxy@.service",
		"lb-haproxy@192.0.2.20.service.d/transparent.conf",
		"lb-haproxy@2001-db8--5.service.d/transparent.conf",
	}
	if got := names(files); !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	if string(files[0].Data) != Template() || string(files[1].Data) != TransparentDropIn() {
		t.Error("file contents differ from Template/TransparentDropIn")
	}

	_, err = Files([]Instance{{Name: "a"}, {Name: "a"}, {Name: "b/c"}})
	if err == nil || !strings.Contains(err.Error(), "instance a: listed twice") || !strings.Contains(err.Error(), `"b/c"`) {
		t.Errorf("bad instances: error %v, want both problems", err)
	}
}

func readTree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			rel = ""
		}
		if d.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, rel+" "+strings.SplitN(string(b), "\n", 2)[0])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func TestUnitWriterSync(t *testing.T) {
	dir := t.TempDir()
	// Files lbctl does not own: another unit, another drop-in in one of
	// our drop-in directories.
	foreign := filepath.Join(dir, "lb-haproxy@b.service.d", "override.conf")
	if err := os.MkdirAll(filepath.Dir(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{foreign, filepath.Join(dir, "bird.service")} {
		if err := os.WriteFile(p, []byte("# foreign\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := UnitWriter{Dir: dir}
	sync := func(in ...Instance) bool {
		t.Helper()
		files, err := Files(in)
		if err != nil {
			t.Fatal(err)
		}
		changed, err := w.Sync(files)
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}

	if !sync(Instance{Name: "a", Transparent: true}, Instance{Name: "b", Transparent: true}) {
		t.Error("first sync: changed = false")
	}
	want := `/
bird.service # foreign
lb-haproxy@.service # lb-haproxy@.service: one HAProxy master-worker per VIP, managed by lbctl.
lb-haproxy@a.service.d/
lb-haproxy@a.service.d/transparent.conf # Written by lbctl for a transparent VIP: IP_TRANSPARENT needs CAP_NET_ADMIN.
lb-haproxy@b.service.d/
lb-haproxy@b.service.d/override.conf # foreign
lb-haproxy@b.service.d/transparent.conf # Written by lbctl for a transparent VIP: IP_TRANSPARENT needs CAP_NET_ADMIN.`
	if got := readTree(t, dir); got != want {
		t.Errorf("tree after first sync:\n%s\nwant:\n%s", got, want)
	}
	if sync(Instance{Name: "a", Transparent: true}, Instance{Name: "b", Transparent: true}) {
		t.Error("second identical sync: changed = true")
	}
	// Both stop being transparent: a's directory goes, b's stays for the
	// foreign drop-in.
	if !sync(Instance{Name: "a"}, Instance{Name: "b"}) {
		t.Error("sync removing drop-ins: changed = false")
	}
	want = `/
bird.service # foreign
lb-haproxy@.service # lb-haproxy@.service: one HAProxy master-worker per VIP, managed by lbctl.
lb-haproxy@b.service.d/
lb-haproxy@b.service.d/override.conf # foreign`
	if got := readTree(t, dir); got != want {
		t.Errorf("tree after removal:\n%s\nwant:\n%s", got, want)
	}
	// A changed template is rewritten.
	if err := os.WriteFile(filepath.Join(dir, TemplateName), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !sync() {
		t.Error("sync after template edit: changed = false")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, TemplateName)); string(b) != Template() {
		t.Error("template not rewritten")
	}

	// Names lbctl does not own are refused, and nothing is written.
	for _, name := range []string{"bird.service", "../x", "lb-haproxy@a.service.d/override.conf", "lb-haproxy@a/b.service.d/transparent.conf"} {
		if _, err := w.Sync([]File{{Name: name, Data: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "not a file lbctl owns") {
			t.Errorf("Sync(%q): error %v", name, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "bird.service")); string(b) != "# foreign\n" {
		t.Error("foreign unit overwritten")
	}
}

// TestUnitWriterSyncDropIn: one instance's drop-in, as an install writes
// it VIP by VIP, and the template: the same files Sync writes.
func TestUnitWriterSyncDropIn(t *testing.T) {
	dir, ref := t.TempDir(), t.TempDir()
	w := UnitWriter{Dir: dir}
	step := func(name string, do func() (bool, error), want bool) {
		t.Helper()
		changed, err := do()
		if err != nil || changed != want {
			t.Errorf("%s: changed %v, err %v; want changed %v", name, changed, err, want)
		}
	}
	step("template", w.WriteTemplate, true)
	step("template again", w.WriteTemplate, false)
	step("a transparent", func() (bool, error) { return w.SyncDropIn("a", true) }, true)
	step("a again", func() (bool, error) { return w.SyncDropIn("a", true) }, false)
	step("b not transparent", func() (bool, error) { return w.SyncDropIn("b", false) }, false)
	files, err := Files([]Instance{{Name: "a", Transparent: true}, {Name: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (UnitWriter{Dir: ref}).Sync(files); err != nil {
		t.Fatal(err)
	}
	if got, want := readTree(t, dir), readTree(t, ref); got != want {
		t.Errorf("drop-in by drop-in:\n%s\nSync:\n%s", got, want)
	}
	step("a no longer transparent", func() (bool, error) { return w.SyncDropIn("a", false) }, true)
	if _, err := os.Stat(filepath.Join(dir, DropInDir("a"))); !os.IsNotExist(err) {
		t.Errorf("drop-in directory of a left: %v", err)
	}
	if _, err := w.SyncDropIn("../x", true); err == nil {
		t.Error("instance ../x accepted")
	}
}
