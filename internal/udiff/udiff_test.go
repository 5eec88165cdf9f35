package udiff

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n"
	got := Unified("old", "new", a, b, 1)
	want := `--- old
+++ new
@@ -3,3 +3,3 @@
 c
-d
+D
 e
@@ -10,1 +10,2 @@
 j
+k
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if Unified("a", "b", a, a, 3) != "" {
		t.Fatal("equal texts diff")
	}
}

// TestAgainstPatch applies our diffs with patch(1) and checks the result.
func TestAgainstPatch(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch not installed")
	}
	cases := [][2]string{
		{"", "x\ny\n"},
		{"x\ny\n", ""},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n", "0\n1\n2\n4\n5\n6\n6b\n7\n9\n"},
		{strings.Repeat("l\n", 50) + "m\n", "m\n" + strings.Repeat("l\n", 49) + "n\n"},
	}
	for i, c := range cases {
		dir := t.TempDir()
		f := filepath.Join(dir, "f")
		os.WriteFile(f, []byte(c[0]), 0o644)
		d := Unified("f", "f", c[0], c[1], 3)
		cmd := exec.Command("patch", "-s", f)
		cmd.Stdin = strings.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("case %d: patch: %v %s\n%s", i, err, out, d)
		}
		if got, _ := os.ReadFile(f); string(got) != c[1] {
			t.Fatalf("case %d: patched %q want %q\n%s", i, got, c[1], d)
		}
	}
}
