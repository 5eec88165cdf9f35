package intent

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// grammarCases are, per grammar, the Go check the pattern mirrors and
// inputs on both sides of it.
var grammarCases = []struct {
	grammar string
	check   func(string) bool
	inputs  []string
	// lenient are inputs the schema takes and the Go check refuses, for
	// a reason a pattern cannot see.
	lenient []string
}{
	{"fqdn", func(s string) bool { return len(s) <= 254 && validHostname(canonicalName(s)) }, []string{
		"www.example.org", "WWW.Example.ORG.", "_srv._tcp.example.org", "a.b", "a-b.c", "localhost", "-a.b", "a-.b", "a..b", ".a.b",
		"a.b..", "a b.c", "ä.example", "x." + strings.Repeat("y", 63), "x." + strings.Repeat("y", 64), "1.2", "a.b-"}, nil},
	{"hostname", func(s string) bool { return len(s) <= 253 && validLabels(s) }, []string{
		"lb1", "lb1.campus.example", "lb_1", "-lb", "lb-", "lb..x", "lb.", "", strings.Repeat("a", 64)}, nil},
	{"name", func(s string) bool { return len(s) <= 128 && certNameRE.MatchString(s) }, []string{
		"web-team", "campus-wildcard", "a.b_c-d", "_x", "-x", "team web", "x/y", "9", strings.Repeat("n", 128), strings.Repeat("n", 129)}, nil},
	{"status", func(s string) bool { return statusRE.MatchString(s) }, []string{"200", "2xx", "30x", "600", "099", "20", "2000", "abc"}, nil},
	{"ipv4", func(s string) bool { a, err := netip.ParseAddr(s); return err == nil && a.Is4() }, []string{
		"192.0.2.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "::1", "1.2.3.04"}, nil},
	{"ip", func(s string) bool { a, err := netip.ParseAddr(s); return err == nil && a.Zone() == "" }, []string{
		"192.0.2.1", "2001:db8::1", "::", "::1", "1::", "fe80::1%eth0", "2001:db8:0:0:0:0:0:1", "2001:db8::0:1:2:3:4", "1:2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::ffff:192.0.2.1", "64:ff9b::192.0.2.1", "1::2::3", "12345::", "g::1", "2001:DB8::A"}, nil},
	{"prefix", func(s string) bool { _, err := parsePrefix(s); return err == nil }, []string{
		"192.0.2.0/24", "192.0.2.7", "192.0.2.0/33", "192.0.2.0/08", "192.0.2.0/0", "2001:db8::/32", "2001:db8::/129", "2001:db8::/012",
		"::/0", "fe80::1%eth0/64", "192.0.2.0/", "x/24"}, nil},
	{"monitoring", func(s string) bool {
		p, err := parsePrefix(s)
		return err == nil && p.Bits() >= map[bool]int{true: minMonitoringBits4, false: minMonitoringBits6}[p.Addr().Is4()]
	}, []string{"198.51.100.60", "10.0.0.0/8", "10.0.0.0/7", "0.0.0.0/0", "2001:db8::/16", "2001:db8::/15", "2001:db8::/32", "2001:db8::1"}, nil},
	{"duration", func(s string) bool {
		d, err := time.ParseDuration(s)
		return err == nil && d >= time.Millisecond && d <= 24*time.Hour
	}, []string{
		"5s", "1m30s", "500ms", "1.5h", ".5s", "1.s", "2h45m", "+5s", "5", "5 s", "5S", "1d", "10us", "1500us", "1500µs", ""},
		[]string{"10us"}}, // out of range 1ms..24h: the loader says so
	{"community", func(s string) bool {
		var c Community
		return c.decodeScalar(&node{kind: kindScalar, tag: tagStr, value: s}) == nil
	}, []string{"65000:100", "0:0", "65535:65535", "65535:0", "65536:1", "65000:0100", "-1:5", "65000 :1", "650001", "1:2:3", "x:1"}, nil},
	{"large_community", func(s string) bool {
		var c LargeCommunity
		return c.decodeScalar(&node{kind: kindScalar, tag: tagStr, value: s}) == nil
	}, []string{"4200000001:1:2", "0:0:0", "4294967295:4294967295:4294967295", "4294967296:1:1", "4294967299:1:1", "65000:1", "1:2:3 ",
		"x:1:2", "01:2:3", "3999999999:1:1", "4294967290:0:0"}, nil},
	{"interface", func(s string) bool { return checkInterfaceName(s) }, []string{"lo", "eth0", "bond0.100", "en-p1_s0", ".", "..", "", "a/b", strings.Repeat("x", 16)}, nil},
}

// checkInterfaceName is model's interface grammar (1 to 15 of
// [A-Za-z0-9._-], not "." or "..").
func checkInterfaceName(s string) bool {
	return regexp.MustCompile(`^[A-Za-z0-9._-]{1,15}$`).MatchString(s) && s != "." && s != ".."
}

// grammarValidator compiles a grammar's schema with the JSON Schema
// validator.
func grammarValidator(t *testing.T, grammar string) *jsonschema.Schema {
	c := jsonschema.NewCompiler()
	b, _ := json.Marshal(grammarSchema(grammar))
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(grammar+".json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(grammar + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// patternOf returns a grammar's string pattern.
func patternOf(t *testing.T, grammar string) (*regexp.Regexp, string) {
	s := grammarSchema(grammar)
	if alts, ok := s["anyOf"].([]any); ok {
		s = alts[0].(map[string]any)
	}
	p := s["pattern"].(string)
	re, err := regexp.Compile(p)
	if err != nil {
		t.Fatalf("%s: %v", grammar, err)
	}
	return re, p
}

// TestGrammarPatterns: each grammar's schema, in the JSON Schema
// validator, takes exactly the strings its Go check takes, for hand-picked
// inputs and random IP addresses and prefixes; the few it takes for a
// reason no pattern sees are listed as lenient.
func TestGrammarPatterns(t *testing.T) {
	inputs := map[string][]string{}
	for _, gc := range grammarCases {
		v := grammarValidator(t, gc.grammar)
		in := gc.inputs
		if gc.grammar == "ip" || gc.grammar == "prefix" {
			in = append(in, randomAddrs(200)...)
		}
		inputs[gc.grammar] = in
		for _, s := range in {
			got := v.Validate(s) == nil
			want := gc.check(s) || slices.Contains(gc.lenient, s)
			if got != want {
				t.Errorf("%s %q: schema %v, Go check %v", gc.grammar, s, got, want)
			}
		}
	}
	crossCheckJS(t, inputs)
}

// randomAddrs are random IPv4 and IPv6 addresses in netip's text, with and
// without prefix lengths.
func randomAddrs(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	var out []string
	for range n {
		var b [16]byte
		for i := range b {
			if r.IntN(3) > 0 { // runs of zeros make :: forms
				b[i] = byte(r.IntN(256))
			}
		}
		a := netip.AddrFrom16(b)
		if r.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte(b[:4]))
		}
		s := a.String()
		if r.IntN(2) == 0 {
			s = netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).String()
		}
		out = append(out, s)
	}
	return out
}

// crossCheckJS matches the same inputs with JavaScript's regular
// expressions, with the u flag (as ajv uses them) and without (as VS Code's
// and yaml-language-server's JSON language service do), when node is
// installed: the patterns must mean the same to editors.
func crossCheckJS(t *testing.T, inputs map[string][]string) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Log("node not installed: patterns not checked with JavaScript's regular expressions")
		return
	}
	type job struct {
		Pattern string   `json:"pattern"`
		Inputs  []string `json:"inputs"`
	}
	var jobs []job
	var res []*regexp.Regexp
	for _, gc := range grammarCases {
		re, p := patternOf(t, gc.grammar)
		jobs = append(jobs, job{p, inputs[gc.grammar]})
		res = append(res, re)
	}
	jobs = append(jobs, job{boolWordsPattern, []string{"on", "ON", "oN", "yes", "y", "true", "maybe", "off", "No"}})
	res = append(res, regexp.MustCompile(boolWordsPattern))
	in, _ := json.Marshal(jobs)
	script := `const jobs = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(["u", ""].map(f => jobs.map(j => { const re = new RegExp(j.pattern, f); return j.inputs.map(s => re.test(s)); }))));`
	cmd := exec.Command(node, "-e", script)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got [2][][]bool // with and without the u flag
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	for f, flag := range []string{"u", "none"} {
		for i, j := range jobs {
			for k, s := range j.Inputs {
				if want := res[i].MatchString(s); got[f][i][k] != want {
					t.Errorf("pattern %d on %q: JavaScript (flags %s) %v, Go %v", i, s, flag, got[f][i][k], want)
				}
			}
		}
	}
	t.Logf("%d patterns checked with node", len(jobs))
}
