package intent

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the want files of the broken-tree corpus")

// copyTree copies the directory src into dst (which may exist).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if d.Name() == "want" {
			return nil
		}
		if d.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, filepath.Join(dst, rel))
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// errorLines resolves the tree in dir and returns its errors, one per line,
// with dir stripped so that paths are relative to the tree.
func errorLines(t testing.TB, dir string) []string {
	t.Helper()
	_, err := Resolve(context.Background(), dir, Options{})
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want Errors, got %T: %v", err, err)
	}
	var lines []string
	for _, e := range es {
		lines = append(lines, strings.ReplaceAll(e.Error(), dir+string(filepath.Separator), ""))
	}
	return lines
}

// TestBrokenTrees runs the corpus in testdata/broken: each case is a
// directory of files laid over testdata/base; its want file lists every
// error expected, in order, as "file:line:col: message substring".
func TestBrokenTrees(t *testing.T) {
	cases, err := os.ReadDir("testdata/broken")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 25 {
		t.Fatalf("corpus has %d cases, want at least 25", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, "testdata/base", dir)
			copyTree(t, filepath.Join("testdata/broken", c.Name()), dir)
			got := errorLines(t, dir)
			wantFile := filepath.Join("testdata/broken", c.Name(), "want")
			if *update {
				if err := os.WriteFile(wantFile, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(got) == 0 {
				t.Fatalf("tree resolved without errors, want:\n%s", b)
			}
			for i, w := range want {
				if i >= len(got) {
					t.Errorf("missing error %d: want %q", i, w)
					continue
				}
				pos, msg, _ := strings.Cut(w, ": ")
				if !strings.HasPrefix(got[i], pos+": ") || !strings.Contains(got[i], msg) {
					t.Errorf("error %d:\n got  %s\n want %s", i, got[i], w)
				}
			}
			for _, g := range got[min(len(got), len(want)):] {
				t.Errorf("unexpected error: %s", g)
			}
		})
	}
}
