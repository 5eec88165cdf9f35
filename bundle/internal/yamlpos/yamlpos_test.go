package yamlpos

import (
	"errors"
	"testing"
)

func TestSuggest(t *testing.T) {
	names := []string{"fqdn", "aliases", "mode", "listeners", "tls", "backend", "redirects", "allow", "transparent", "timeouts", "owner", "contacts", "web_dc1", "lb"}
	for in, want := range map[string]string{
		"fdqn": "fqdn", "tsl": "tls", "listener": "listeners", "Backend": "backend", "transparant": "transparent",
		"timeout": "timeouts", "contact": "contacts", "xyz": "", "backend_group": "", "a": "",
		"web-dc1": "web_dc1", "LB": "lb",
	} {
		if got := Suggest(in, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPosString(t *testing.T) {
	for _, c := range []struct {
		p    Pos
		want string
	}{
		{Pos{}, ""},
		{Pos{File: "a.yaml"}, "a.yaml"},
		{Pos{Line: 2, Col: 3}, "2:3"},
		{Pos{File: "a.yaml", Line: 2, Col: 3}, "a.yaml:2:3"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%#v: %q, want %q", c.p, got, c.want)
		}
	}
}

func TestList(t *testing.T) {
	var l List
	if l.Err() != nil || !l.Empty() {
		t.Fatal("the zero List is not empty")
	}
	cause := errors.New("cause")
	l.Add(Pos{File: "b.yaml", Line: 1, Col: 1}, "x %d", 1)
	l.Wrap(Pos{File: "a.yaml", Line: 2, Col: 5}, cause, "z")
	l.Add(Pos{File: "a.yaml", Line: 2, Col: 5}, "y")
	l.Add(Pos{File: "a.yaml", Line: 2, Col: 5}, "y")
	if got, want := l.All().Error(), "b.yaml:1:1: x 1\na.yaml:2:5: z: cause\na.yaml:2:5: y\na.yaml:2:5: y"; got != want {
		t.Errorf("All:\n%s\nwant\n%s", got, want)
	}
	err := l.Err()
	if got, want := err.Error(), "a.yaml:2:5: y\na.yaml:2:5: z: cause\nb.yaml:1:1: x 1"; got != want {
		t.Errorf("Err:\n%s\nwant\n%s", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("errors.Is does not see the wrapped cause")
	}
}
