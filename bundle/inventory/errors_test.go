package inventory

import (
	"strings"
	"testing"
)

// TestParseErrors checks each error's message and position. want lists the
// substrings expected, each "in.yaml:LINE:COL: message" at least in part.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"yaml syntax", "all:\n  hosts: [a\n", []string{"in.yaml:2:10: sequence end token ']' not found"}},
		{"duplicate key", "all:\n  hosts:\n    a:\n    a:\n", []string{`in.yaml:4:5: mapping key "a" already defined at [3:5]`}},
		{"ini format", "# hosts\n[web]\nweb1\n", []string{"in.yaml:3:1: ", "this looks like an INI inventory; only the YAML format is supported"}},
		{"top-level scalar", "web1\n", []string{"in.yaml:1:1: inventory must be a mapping of group names", "only the YAML inventory format"}},
		{"top-level sequence", "- all\n", []string{"in.yaml:1:1: inventory must be a mapping", "got a sequence"}},
		{"two documents", "all: {}\n---\nweb: {}\n", []string{"in.yaml:3:1: inventory has several YAML documents"}},
		{"group is a string", "all:\n  children:\n    web: true\n", []string{`in.yaml:3:10: group "web": want a mapping with hosts, vars or children, got a boolean`}},
		{"unknown group key", "all:\n  host:\n    a:\n", []string{`in.yaml:2:3: group "all": unknown key "host" (want hosts, vars or children)`}},
		{"hosts as a list", "all:\n  children:\n    web:\n      hosts:\n        - web1\n", []string{`in.yaml:5:9: group "web": hosts must be a mapping of host names`, "got a sequence"}},
		{"children as a list", "all:\n  children:\n    - web\n", []string{`in.yaml:3:5: group "all": children must be a mapping of group names, got a sequence`}},
		{"host vars a string", "g:\n  hosts:\n    h1: 192.0.2.1\n", []string{`in.yaml:3:9: host "h1": variables must be a mapping, got the string "192.0.2.1"`}},
		{"group vars a list", "g:\n  vars: [a]\n", []string{`in.yaml:2:9: group "g": variables must be a mapping, got a sequence`}},
		{"ansible_host not a string", "g:\n  hosts:\n    h1:\n      ansible_host: [192.0.2.1]\n", []string{`in.yaml:4:21: host "h1": ansible_host must be a string, got a sequence`}},
		{"ansible_host an integer", "g:\n  hosts:\n    h1: {ansible_host: 42}\n", []string{`in.yaml:3:24: host "h1": ansible_host must be a string, got an integer`}},
		{"ansible_host empty", "g:\n  hosts:\n    h1:\n      ansible_host: \"\"\n", []string{`in.yaml:4:21: host "h1": ansible_host is empty`}},
		{"group ansible_host null", "g:\n  vars:\n    ansible_host:\n", []string{`in.yaml:3:5: group "g": ansible_host must be a string, got null`}},
		{"priority not an integer", "g:\n  vars:\n    x: 1\n    ansible_group_priority: high\n", []string{`in.yaml:4:29: group "g": ansible_group_priority must be an integer, got the string "high"`}},
		{"all as a child", "g:\n  children:\n    all:\n", []string{`in.yaml:3:5: group "g": "all" cannot be a child group`}},
		{"self cycle", "all:\n  children:\n    a:\n      children:\n        a:\n", []string{"in.yaml:5:9: group cycle: a -> a"}},
		{"cycle", "a:\n  children:\n    b:\n      children:\n        c:\nc:\n  children:\n    a:\n", []string{"in.yaml:8:5: group cycle: a -> b -> c -> a"}},
		{"unknown alias", "g:\n  hosts:\n    h: *nope\n", []string{"in.yaml:3:8: alias *nope refers to no anchor defined before it"}},
		{"recursive alias", "g: &g\n  children:\n    h: *g\n", []string{"groups nested more than 64 deep"}},
		{"null key", "g:\n  hosts:\n    ~: {}\n", []string{"in.yaml:3:5: key must be a string, got null"}},
		{"bad range", "g:\n  hosts:\n    web[1-3]:\n", []string{`in.yaml:3:5: host "web[1-3]": invalid host range`}},
		{"reversed range", "g:\n  hosts:\n    web[3:1]:\n", []string{`in.yaml:3:5: host "web[3:1]": range [3:1] ends before it starts`}},
		{"huge range", "g:\n  hosts:\n    web[1:99999999]:\n", []string{"range [1:99999999] expands to more than 65536 hosts"}},
		{"padded range widths", "g:\n  hosts:\n    web[01:100]:\n", []string{"must have the same width"}},
		{"merge of a scalar", "g:\n  hosts:\n    h:\n      <<: 1\n", []string{"in.yaml:4:11: merge key: want a mapping, got an integer"}},
		{
			"independent errors are all reported",
			"a:\n  hosts: [x]\nb:\n  vars: 1\nc:\n  colour: red\n",
			[]string{
				`in.yaml:2:10: group "a": hosts must be a mapping`,
				`in.yaml:4:9: group "b": variables must be a mapping, got an integer`,
				`in.yaml:6:3: group "c": unknown key "colour"`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse("in.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; groups %v", inv.Groups())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/does-not-exist.yaml") {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

func TestAliasBomb(t *testing.T) {
	// Each level doubles the size: 2^30 nodes if expanded naively.
	var b strings.Builder
	b.WriteString("g:\n  hosts:\n    h:\n      l0: &l0 [x, x]\n")
	for i := 1; i <= 30; i++ {
		b.WriteString("      l" + itoa(i) + ": &l" + itoa(i) + " [*l" + itoa(i-1) + ", *l" + itoa(i-1) + "]\n")
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "inventory too large") {
		t.Fatalf("alias bomb: %v", err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
