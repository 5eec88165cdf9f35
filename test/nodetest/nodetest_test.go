package nodetest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSnapshotDiff(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", "1")
	write("b", "2")
	if err := os.Symlink("a", filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
	before := Snapshot(t, root)
	if want := (Tree{".": "dir", "a": "1", "b": "2", "current": "-> a"}); !maps.Equal(before, want) {
		t.Fatalf("snapshot %v, want %v", before, want)
	}
	write("a", "changed")
	write("c", "3")
	if err := os.Remove(filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	got := before.Diff(Snapshot(t, root))
	if want := []string{"changed a", "created c", "removed b"}; !slices.Equal(got, want) {
		t.Errorf("diff %q, want %q", got, want)
	}
	if d := before.Diff(before); len(d) != 0 {
		t.Errorf("a tree differs from itself: %q", d)
	}
}
