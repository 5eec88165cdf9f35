package doccmd

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	md := "# Guide\n\n```sh admin\n# a comment\nlbctl keygen k\n\nlbctl build campus \\\n  --key k.key\n```\n\n```yaml\nnot: shell\n```\n\n```sh covered pkg.TestX pkg.TestY\napt-get install ./x.deb\n```\n"
	got, err := Parse([]byte(md))
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{Line: 3, Tags: []string{"admin"}, Commands: []Command{{5, "lbctl keygen k"}, {7, "lbctl build campus --key k.key"}}},
		{Line: 15, Tags: []string{"covered", "pkg.TestX", "pkg.TestY"}, Commands: []Command{{16, "apt-get install ./x.deb"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", got, want)
	}
	if c := Tagged(got, "admin"); len(c) != 2 || c[1].Text != "lbctl build campus --key k.key" {
		t.Errorf("Tagged: %+v", c)
	}
	for _, bad := range []string{"```sh\nls\n", "```sh\nls \\\n```\n"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
