//go:build linux

package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestNodeReadCommandsJSON: the node's read commands print JSON with
// --json (given after the arguments too) on a node with nothing
// installed; exit 1 only where the answer is "no" (verify: nothing to
// compare; doctor: a check failed).
func TestNodeReadCommandsJSON(t *testing.T) {
	n := newRONode(t)
	for _, c := range []struct {
		args  []string
		codes []int
		key   string
	}{
		{[]string{"status", "--config", n.config, "--json"}, []int{0}, "installed"},
		{[]string{"releases", "--json", "--config", n.config}, []int{0}, "installed"},
		{[]string{"verify", "--config", n.config, "--json"}, []int{1}, "installed"},
		{[]string{"plan", n.bundle, "--config", n.config, "--json"}, []int{0}, "steps"},
		{[]string{"doctor", "--config", n.config, "--json"}, []int{0, 1}, ""},
	} {
		out, errOut, code := run(t, c.args...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("lbctl %s: %v:\n%s%s", strings.Join(c.args, " "), err, out, errOut)
			continue
		}
		if !slices.Contains(c.codes, code) {
			t.Errorf("lbctl %s: exit %d, want %v\n%s", strings.Join(c.args, " "), code, c.codes, errOut)
		}
		if m, ok := v.(map[string]any); c.key != "" && (!ok || m[c.key] == nil) {
			t.Errorf("lbctl %s: no %q in %s", strings.Join(c.args, " "), c.key, out)
		}
	}
}
