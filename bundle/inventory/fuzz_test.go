package inventory

import (
	"os"
	"testing"
)

// FuzzParse checks that no input makes Parse panic or loop, and that a
// parsed inventory answers every query.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("testdata/hosts.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, s := range []string{
		"", "all:\n", "- x\n", "g: &g\n  children:\n    h: *g\n",
		"a:\n  children:\n    b:\n      children:\n        a:\n",
		"g:\n  hosts:\n    w[01:03]-[a:b]:\n      <<: {ansible_host: x}\n",
		"g: {hosts: {h: {ansible_host: !!str 1}}, vars: &v {k: *v}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, g := range inv.Groups() {
			if _, err := inv.Group(g); err != nil {
				t.Fatalf("Group(%q) of a listed group: %v", g, err)
			}
		}
		for _, h := range inv.Hosts() {
			if _, ok := inv.Host(h.Name); !ok {
				t.Fatalf("Host(%q) of a listed host missing", h.Name)
			}
		}
	})
}
