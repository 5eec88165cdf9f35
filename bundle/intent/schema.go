package intent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// The JSON Schemas of the intents files are generated from the Go types the
// loader decodes into and from the same struct tags (yaml, enum, min, max,
// required, plus doc, example, grammar and unique for the schema), so that
// they accept what the loader accepts:
//
//   - the short forms (tls: on, backend: NAME, check: tcp, listeners: [443]);
//   - null for every field that is not required (it resets an inherited
//     value), and no required field in a service or defaults file: a
//     defaults file above may supply it (the loader checks the merged file);
//   - booleans as YAML booleans or as the words true/false, yes/no, on/off in
//     any case: the loader reads YAML 1.2 (goccy/go-yaml), where on and yes
//     are strings, and accepts them where it wants a boolean;
//   - strings as strings or numbers (expect: 200, min_version: 1.3), as the
//     loader takes a number's text where it wants a string;
//   - the grammars the resolver checks (host names, names, paths, addresses,
//     prefixes, durations) as patterns.
//
// The schema checks one file; what needs the tree (a field that no defaults
// supply, locks, policy, DNS, the inventory) is for lbctl check.

// scalarSchemaer is implemented by scalar types with their own JSON Schema.
type scalarSchemaer interface{ scalarSchema() map[string]any }

// shorthandSchemaer gives the schema of a struct type's short form.
type shorthandSchemaer interface{ shorthandSchema() map[string]any }

// SchemaKinds are the file kinds Schema knows.
var SchemaKinds = []string{"service", "defaults", "node", "site"}

// schemaFile describes one kind of file.
type schemaFile struct {
	t           reflect.Type
	title, desc string
	// example is a complete file of the kind, in YAML.
	example string
	// empty: an empty file (null) is a valid file of the kind.
	empty bool
}

var schemaFiles = map[string]schemaFile{
	"service": {reflect.TypeFor[Service](), "lbctl service file",
		"One service of an lbctl intents tree: any *.yaml file except site.yaml, defaults.yaml, the node profiles and the files site.yaml names. fqdn and backend are required once the defaults.yaml files above are merged in.",
		"fqdn: wiki.campus.example\naliases: [www.wiki.campus.example]\ntls: on\nbackend:\n  group: wiki_web\n  software: nginx\n  check: {path: /healthz, expect: 200}\nowner: web-team\ncontacts: [web-team@campus.example]\n", true},
	"defaults": {reflect.TypeFor[DefaultsFile](), "lbctl defaults.yaml",
		"Defaults, locks and policy for the directory of this defaults.yaml and everything below it.",
		"defaults:\n  backend: {software: apache2}\n  tls: {enabled: true, min_version: 1.2}\nlock: [tls.min_version]\npolicy:\n  vip_prefixes: [192.0.2.0/24, 2001:db8:1::/48]\n  backend_groups: [typo3_*]\n", true},
	"node": {reflect.TypeFor[NodeProfile](), "lbctl node profile",
		"One LB node: a file in the nodes directory that site.yaml names (default nodes/).",
		"hostname: lb1.campus.example\nrouter_id: 198.51.100.1\nasn: 65001\nroute_reflectors:\n  - {name: rr1, address: 198.51.100.254, asn: 65000}\nbfd: true\naddresses: [198.51.100.1, 2001:db8:100::1]\n", false},
	"site": {reflect.TypeFor[SiteFile](), "lbctl site.yaml",
		"site.yaml at the root of an lbctl intents tree.",
		"site: campus\ninventory: inventory.yaml\nzone: campus.zone\nnodes: nodes\nmonitoring:\n  hosts: [198.51.100.60, 2001:db8:100::60]\n", false},
}

// Schema returns a JSON Schema (draft-07, what yaml-language-server and
// VS Code implement; the same schema is valid draft 2020-12) of one kind of intents file
// ("service", "defaults", "node" or "site"), generated from the Go types
// the loader decodes into, so that it cannot drift from the loader.
func Schema(kind string) ([]byte, error) {
	s, err := schemaMap(kind)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return buf.Bytes(), nil
}

// schemaMap is the schema of a kind of file as JSON values.
func schemaMap(kind string) (map[string]any, error) {
	f, ok := schemaFiles[kind]
	if !ok {
		return nil, fmt.Errorf("schema: unknown kind %q (want service, defaults, node or site)", kind)
	}
	g := schemaGen{}
	s := g.object(f.t)
	if f.empty {
		s["type"] = []string{"object", "null"}
	}
	s["$schema"] = "http://json-schema.org/draft-07/schema#"
	s["$id"] = "https://lbctl.invalid/schema/" + kind + ".json"
	s["title"] = f.title
	s["description"] = f.desc
	ex, err := yamlExample(f.example)
	if err != nil {
		return nil, fmt.Errorf("schema: example of %s: %w", kind, err)
	}
	s["examples"] = []any{ex}
	defs := map[string]any{}
	addDefs(s, defs)
	if len(defs) > 0 {
		s["definitions"] = defs
	}
	return s, nil
}

// addDefs adds to defs the grammars v refers to.
func addDefs(v any, defs map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, defsPrefix)
			if _, done := defs[name]; !done {
				defs[name] = grammarSchema(name)
				addDefs(defs[name], defs)
			}
		}
		for _, x := range v {
			addDefs(x, defs)
		}
	case []any:
		for _, x := range v {
			addDefs(x, defs)
		}
	}
}

// yamlExample is a YAML document as JSON values, typed as the loader types
// them.
func yamlExample(src string) (any, error) {
	n, perr := parseYAML("example.yaml", []byte(src))
	if perr != nil {
		return nil, perr
	}
	return n.jsonValue(), nil
}

// jsonValue is the node as the JSON value a schema validator sees: what an
// editor's YAML 1.2 parser makes of the file, since the loader's parser is a
// YAML 1.2 one.
func (n *node) jsonValue() any {
	switch n.kind {
	case kindMap:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			m[k.value] = n.vals[i].jsonValue()
		}
		return m
	case kindSeq:
		l := make([]any, len(n.items))
		for i, it := range n.items {
			l[i] = it.jsonValue()
		}
		return l
	case kindNull:
		return nil
	}
	switch n.tag {
	case tagBool:
		return strings.EqualFold(n.value, "true")
	case tagInt:
		if v, ok := parseInt(n); ok {
			return json.Number(strconv.FormatInt(v, 10))
		}
	case tagFloat:
		if v, err := strconv.ParseFloat(strings.ReplaceAll(n.value, "_", ""), 64); err == nil {
			return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
		}
	case tagNull:
		return nil
	}
	return n.value
}

// schemaGen generates the schema of a file; defaults is set inside a
// defaults file's "defaults:", where even the required fields of a service
// may be null.
type schemaGen struct {
	defaults bool
}

// typeSchema is the schema of a value of type t in the field f (nil for a
// file's root); f's enum, range and grammar apply to each item of a list.
func (g schemaGen) typeSchema(t reflect.Type, f *field) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(scalarDecoderType) {
		if f != nil && f.grammar != "" {
			return grammarRef(f.grammar)
		}
		return reflect.Zero(t).Interface().(scalarSchemaer).scalarSchema()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj := g.object(t)
		if sh, ok := reflect.Zero(t).Interface().(shorthandSchemaer); ok {
			return map[string]any{"anyOf": []any{sh.shorthandSchema(), obj}}
		}
		return obj
	case reflect.Slice:
		s := map[string]any{"type": "array", "items": g.typeSchema(t.Elem(), f)}
		if f != nil && f.unique {
			s["uniqueItems"] = true
		}
		return s
	case reflect.String:
		return stringSchema(f)
	case reflect.Bool:
		return boolSchema("")
	case reflect.Int, reflect.Int64, reflect.Uint32:
		s := map[string]any{"type": "integer"}
		if t.Kind() == reflect.Uint32 {
			s["minimum"], s["maximum"] = 0, uint64(1<<32-1)
		}
		if f != nil && f.min != nil {
			s["minimum"] = *f.min
		}
		if f != nil && f.max != nil {
			s["maximum"] = *f.max
		}
		return s
	}
	panic(fmt.Sprintf("intent: no schema for %s", t))
}

// object is the schema of a struct type in its long form.
func (g schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	merged := t == reflect.TypeFor[Service]()
	for _, f := range infoOf(t).fields {
		sf := t.Field(f.index)
		sub := g
		if t == reflect.TypeFor[DefaultsFile]() && f.name == "defaults" {
			sub.defaults = true
		}
		fs := sub.typeSchema(sf.Type, &f)
		switch {
		case f.required && !merged:
			required = append(required, f.name)
		case f.required && !g.defaults:
			// In a service file: not required (defaults may supply
			// it) but not null either (nothing would).
		default:
			fs = orNull(fs)
		}
		if f.doc != "" {
			fs["description"] = f.doc
		}
		if ex := sf.Tag.Get("example"); ex != "" {
			fs["examples"] = []any{exampleValue(ex)}
		}
		props[f.name] = fs
	}
	if t == reflect.TypeFor[DefaultsFile]() {
		lock := props["lock"].(map[string]any)
		lock["items"] = map[string]any{"enum": lockablePaths(reflect.TypeFor[Service](), "")}
	}
	obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		obj["required"] = required
	}
	return obj
}

// exampleValue is a field's example tag: JSON if it parses, else the text.
func exampleValue(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		return v
	}
	return s
}

// orNull adds null to the values s accepts.
func orNull(s map[string]any) map[string]any {
	if alts, ok := s["anyOf"].([]any); ok && len(s) == 1 {
		return map[string]any{"anyOf": append(alts[:len(alts):len(alts)], map[string]any{"type": "null"})}
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// stringSchema is the schema of a string field: not empty (null resets a
// value), one line, no control characters; a number's text is a string too.
// An enum lists its values (and their numbers: min_version: 1.2); a grammar
// gives the pattern.
func stringSchema(f *field) map[string]any {
	if f != nil && len(f.enum) > 0 {
		var vals []any
		for _, e := range f.enum {
			vals = append(vals, e)
		}
		for _, e := range f.enum {
			if _, err := strconv.ParseFloat(e, 64); err == nil {
				vals = append(vals, json.Number(e))
			}
		}
		return map[string]any{"enum": vals}
	}
	if f != nil && f.grammar != "" {
		return grammarRef(f.grammar)
	}
	return map[string]any{"type": []string{"string", "number"}, "minLength": 1, "pattern": `^[^\x00-\x1f\x7f-\x9f]*$`}
}

// boolSchema accepts what parseBool accepts: YAML 1.2 booleans and the
// words true/false, yes/no, on/off in any case.
func boolSchema(desc string) map[string]any {
	s := map[string]any{"anyOf": []any{
		map[string]any{"type": "boolean"},
		map[string]any{"type": "string", "pattern": boolWordsPattern},
	}}
	if desc != "" {
		s["description"] = desc
	}
	return s
}

// boolWordsPattern matches the words parseBool takes, in any case (without
// the (?i) flag, which JavaScript's regular expressions lack).
var boolWordsPattern = "^(" + strings.Join([]string{anyCase("true"), anyCase("false"), anyCase("yes"), anyCase("no"), anyCase("on"), anyCase("off")}, "|") + ")$"

// anyCase is a pattern matching word in any case.
func anyCase(word string) string {
	var b strings.Builder
	for _, r := range word {
		fmt.Fprintf(&b, "[%c%c]", r, r-'a'+'A')
	}
	return b.String()
}

// lockablePaths lists the dotted field paths a lock may name (checkFieldPath
// accepts exactly these), in the order of the fields.
func lockablePaths(t reflect.Type, prefix string) []string {
	var out []string
	for _, f := range infoOf(t).fields {
		p := prefix + f.name
		out = append(out, p)
		ft := t.Field(f.index).Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(scalarDecoderType) {
			out = append(out, lockablePaths(ft, p+".")...)
		}
	}
	return out
}
