package inventory

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func names(hs []Host) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

func TestLoadTestdata(t *testing.T) {
	inv, err := Load("testdata/hosts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := []string{"all", "lb", "monitoring", "ungrouped", "web", "web_dc1", "web_dc2"}
	if got := inv.Groups(); !slices.Equal(got, wantGroups) {
		t.Errorf("Groups() = %v, want %v", got, wantGroups)
	}
	for _, tc := range []struct {
		group string
		want  []string
	}{
		{"lb", []string{"lb1", "lb2"}},
		{"web", []string{"web1.example.org", "web2.example.org", "web3.example.org", "web4.example.org"}},
		{"web_dc2", []string{"web3.example.org", "web4.example.org"}},
		{"monitoring", []string{"app01.example.org", "app02.example.org", "app03.example.org", "lb1", "web1.example.org"}},
		{"ungrouped", []string{"bastion"}},
		{"all", []string{"app01.example.org", "app02.example.org", "app03.example.org", "bastion", "lb1", "lb2",
			"web1.example.org", "web2.example.org", "web3.example.org", "web4.example.org"}},
	} {
		hs, err := inv.Group(tc.group)
		if err != nil {
			t.Errorf("Group(%q): %v", tc.group, err)
			continue
		}
		if got := names(hs); !slices.Equal(got, tc.want) {
			t.Errorf("Group(%q) = %v, want %v", tc.group, got, tc.want)
		}
	}

	for _, tc := range []struct{ host, addr string }{
		{"bastion", "192.0.2.1"},
		{"lb1", "192.0.2.11"},
		{"lb2", "2001:db8::12"},
		{"web1.example.org", ""},
		{"web2.example.org", "198.51.100.22"},
		{"web3.example.org", "203.0.113.99"}, // inherited from web_dc2
		{"web4.example.org", "203.0.113.24"}, // host wins over group
		{"app02.example.org", ""},
	} {
		h, ok := inv.Host(tc.host)
		if !ok {
			t.Errorf("Host(%q) not found", tc.host)
			continue
		}
		if h.Address != tc.addr {
			t.Errorf("Host(%q).Address = %q, want %q", tc.host, h.Address, tc.addr)
		}
	}

	lb1, _ := inv.Host("lb1")
	if lb1.Vars["bgp_router_id"] != "192.0.2.11" || lb1.Source != "testdata/hosts.yaml:12:9" {
		t.Errorf("lb1 = %+v", lb1)
	}
	if _, ok := lb1.Vars["ansible_user"]; ok {
		t.Errorf("lb1.Vars has the group variable ansible_user; want only host variables")
	}
	app, _ := inv.Host("app03.example.org")
	if app.Vars["role"] != "app" {
		t.Errorf("app03 vars = %v", app.Vars)
	}
	if _, ok := inv.Host("nope"); ok {
		t.Error("Host(nope) found")
	}
	// Vars are copies: changing them does not change the inventory.
	lb1.Vars["bgp_router_id"] = "x"
	if again, _ := inv.Host("lb1"); again.Vars["bgp_router_id"] != "192.0.2.11" {
		t.Error("Host returned the inventory's own vars map")
	}
}

func TestUnknownGroup(t *testing.T) {
	inv, err := Load("testdata/hosts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, want string }{
		{"webb", `unknown inventory group "webb" in testdata/hosts.yaml (did you mean "web"?)`},
		{"web-dc1", `(did you mean "web_dc1"?)`},
		{"LB", `(did you mean "lb"?)`},
		{"databases", `unknown inventory group "databases" in testdata/hosts.yaml`},
		{"bastion", `("bastion" is a host, not a group)`},
	} {
		_, err := inv.Group(tc.name)
		if !errors.Is(err, ErrUnknownGroup) {
			t.Errorf("Group(%q) error %v does not wrap ErrUnknownGroup", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Group(%q) error %q, want it to contain %q", tc.name, err, tc.want)
		}
		if tc.name == "databases" && strings.Contains(err.Error(), "did you mean") {
			t.Errorf("Group(databases) suggests something: %v", err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		groups map[string][]string // group -> hosts
		addrs  map[string]string   // host -> address
	}{
		{
			name:   "empty file",
			in:     "# nothing yet\n",
			groups: map[string][]string{"all": {}, "ungrouped": {}},
		},
		{
			name:   "top-level groups are children of all",
			in:     "web:\n  hosts:\n    w1:\ndb:\n  hosts:\n    d1:\n",
			groups: map[string][]string{"all": {"d1", "w1"}, "web": {"w1"}, "db": {"d1"}, "ungrouped": {}},
		},
		{
			name: "host in several groups and deep nesting, deduplicated",
			in: `all:
  children:
    a:
      hosts: {h1: , h2: }
      children:
        b:
          hosts: {h2: }
          children:
            c:
              hosts: {h1: , h3: }
    d:
      children:
        c:
`,
			groups: map[string][]string{"a": {"h1", "h2", "h3"}, "b": {"h1", "h2", "h3"}, "c": {"h1", "h3"}, "d": {"h1", "h3"}},
		},
		{
			name:   "explicit ungrouped",
			in:     "all:\n  children:\n    ungrouped:\n      hosts:\n        u1:\n    g:\n      hosts:\n        g1:\n",
			groups: map[string][]string{"ungrouped": {"u1"}, "g": {"g1"}},
		},
		{
			name:   "host listed in ungrouped and in a group is not ungrouped",
			in:     "all:\n  hosts: {x: }\n  children:\n    g:\n      hosts: {x: }\n",
			groups: map[string][]string{"ungrouped": {}, "g": {"x"}},
		},
		{
			name: "ansible_host precedence: host, then deeper group, then name order",
			in: `all:
  vars: {ansible_host: 192.0.2.100}
  hosts:
    loner:
  children:
    parent:
      vars: {ansible_host: 192.0.2.1}
      children:
        child:
          vars: {ansible_host: 192.0.2.2}
          hosts:
            h_child:
            h_own: {ansible_host: 192.0.2.3}
      hosts:
        h_parent:
    zeta:
      vars: {ansible_host: 192.0.2.26}
      hosts: {h_two: }
    alpha:
      vars: {ansible_host: 192.0.2.27}
      hosts: {h_two: , h_three: }
    beta:
      vars: {ansible_host: 192.0.2.28, ansible_group_priority: 10}
      hosts: {h_three: }
    gamma:
      vars: {ansible_host: 192.0.2.29}
      hosts: {h_three: }
`,
			addrs: map[string]string{"loner": "192.0.2.100", "h_child": "192.0.2.2", "h_own": "192.0.2.3",
				"h_parent": "192.0.2.1", "h_two": "192.0.2.26", "h_three": "192.0.2.28"},
		},
		{
			name: "anchors, aliases and merge keys",
			in: `x-defaults: &defaults
  hosts: {}
all:
  children:
    g:
      hosts:
        h1: &h1vars
          ansible_host: 192.0.2.5
          port: 80
        h2:
          <<: *h1vars
          port: 81
    g2: *defaults
`,
			groups: map[string][]string{"g": {"h1", "h2"}, "g2": {}, "x-defaults": {}},
			addrs:  map[string]string{"h1": "192.0.2.5", "h2": "192.0.2.5"},
		},
		{
			name:   "host ranges",
			in:     "g:\n  hosts:\n    web[1:3]:\n    db-[a:c]-[08:10:2]:\n",
			groups: map[string][]string{"g": {"db-a-08", "db-a-10", "db-b-08", "db-b-10", "db-c-08", "db-c-10", "web1", "web2", "web3"}},
		},
		{
			name:   "vault and unsafe values are kept as text",
			in:     "g:\n  hosts:\n    h:\n      secret: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6134\n      raw: !unsafe '{{ x }}'\n      n: !!str 42\n",
			groups: map[string][]string{"g": {"h"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse("in.yaml", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			for g, want := range tc.groups {
				hs, err := inv.Group(g)
				if err != nil {
					t.Errorf("Group(%q): %v", g, err)
					continue
				}
				if got := names(hs); !slices.Equal(got, want) {
					t.Errorf("Group(%q) = %v, want %v", g, got, want)
				}
			}
			for h, want := range tc.addrs {
				host, ok := inv.Host(h)
				if !ok {
					t.Errorf("Host(%q) missing", h)
				} else if host.Address != want {
					t.Errorf("Host(%q).Address = %q, want %q", h, host.Address, want)
				}
			}
		})
	}
}

func TestVarsValues(t *testing.T) {
	in := `g:
  hosts:
    h:
      s: text
      i: 42
      b: true
      f: 1.5
      l: [1, two]
      m: {k: v}
      nul:
      secret: !vault |
        $ANSIBLE_VAULT;1.1;AES256
        6134
      raw: !unsafe '{{ x }}'
      n: !!str 42
`
	inv, err := Parse("in.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := inv.Host("h")
	v := h.Vars
	if v["s"] != "text" || v["b"] != true || v["f"] != 1.5 || v["nul"] != nil {
		t.Errorf("scalars: %#v", v)
	}
	if i, ok := v["i"].(uint64); !ok || i != 42 {
		if j, ok := v["i"].(int64); !ok || j != 42 {
			t.Errorf("i = %#v", v["i"])
		}
	}
	if l, ok := v["l"].([]any); !ok || len(l) != 2 || l[1] != "two" {
		t.Errorf("l = %#v", v["l"])
	}
	if m, ok := v["m"].(map[string]any); !ok || m["k"] != "v" {
		t.Errorf("m = %#v", v["m"])
	}
	if s, _ := v["secret"].(string); !strings.HasPrefix(s, "$ANSIBLE_VAULT;1.1;AES256\n6134") {
		t.Errorf("secret = %#v", v["secret"])
	}
	if v["raw"] != "{{ x }}" || v["n"] != "42" {
		t.Errorf("raw = %#v, n = %#v", v["raw"], v["n"])
	}
}
