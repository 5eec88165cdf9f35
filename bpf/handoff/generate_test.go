package handoff

import (
	"testing"

	"github.com/lbctl/lbctl/bpf/internal/gentest"
)

// TestGenerateReproducible rebuilds the objects with the go:generate command
// of gen.go into a temporary directory and checks they are byte-identical to
// the committed ones: the committed output is up to date with src/handoff.c.
func TestGenerateReproducible(t *testing.T) {
	gentest.Reproducible(t, "handoff", "../src/clang-version.txt", "handoff_bpfel.o", "handoff_bpfel.go")
}
