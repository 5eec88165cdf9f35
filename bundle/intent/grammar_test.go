package intent

import (
	"errors"
	"strings"
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
)

// TestGrammarOfResolvedModel: strings the intent checks let through but
// the renderers cannot express are refused by the resolved model's
// grammar (model.Site.Validate), at the service file, naming the field.
func TestGrammarOfResolvedModel(t *testing.T) {
	for _, tc := range []struct {
		name, file, svc, want string
	}{
		{"owner newline", "svc.yaml", "fqdn: web.example.org\nbackend: {hosts: [web1]}\nowner: \"web\\nglobal\"\n",
			// The loader refuses it first; the grammar backs it up.
			"svc.yaml:3:8: value \"web\\nglobal\" holds a line break"},
		{"owner quote", "svc.yaml", "fqdn: web.example.org\nbackend: {hosts: [web1]}\nowner: 'a\"b'\n",
			"svc.yaml:3:8: services[0].owner: character '\"'"},
		{"redirect target carriage return", "svc.yaml", "fqdn: web.example.org\nbackend: {hosts: [web1]}\nredirects: [{from: /old, to: \"/new\\r if TRUE\"}]\n",
			"svc.yaml:3:30: value \"/new\\r if TRUE\" holds a control character U+000D"},
		{"redirect target braces", "svc.yaml", "fqdn: web.example.org\nbackend: {hosts: [web1]}\nredirects: [{from: /old, to: \"/x}\"}]\n",
			"services[0].redirects[0].to: character '}'"},
		{"redirect from hash", "svc.yaml", "fqdn: web.example.org\nbackend: {hosts: [web1]}\nredirects: [{from: \"/old#x\", to: /}]\n",
			"services[0].redirects[0].from: character '#'"},
		{"check path quote", "svc.yaml", "fqdn: web.example.org\nbackend: {hosts: [web1], check: {type: http, path: \"/a'b\"}}\n",
			"services[0].backend.check.path: character '\\''"},
		{"check path dollar", "svc.yaml", "fqdn: web.example.org\nbackend: {hosts: [web1], check: {type: http, path: \"/$HOME\"}}\n",
			"services[0].backend.check.path: character '$'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolveFiles(t, testDNS, map[string]string{tc.file: tc.svc})
			if err == nil {
				t.Fatal("resolved")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n%v\nlacks %q", err, tc.want)
			}
			var fe *model.FieldError
			if strings.Contains(tc.want, "services[0]") && (!errors.As(err, &fe) || !errors.Is(err, model.ErrGrammar)) {
				t.Errorf("error is no model.FieldError wrapping ErrGrammar: %v", err)
			}
		})
	}
	if _, err := resolveFiles(t, testDNS, map[string]string{"svc.yaml": "fqdn: web.example.org\nbackend: {hosts: [web1]}\nowner: web-team\n" +
		"redirects: [{from: /old, to: \"https://www.example.org/a%20b?x=1&y='2'#frag\"}]\n"}); err != nil {
		t.Errorf("a valid service: %v", err)
	}
}
