package intent

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/lbctl/lbctl/test/scale"
)

// TestSchemaGolden keeps the JSON Schemas under review: they are generated
// from the types the loader decodes into, and testdata/schema/*.json show
// every change (go test -update rewrites them).
func TestSchemaGolden(t *testing.T) {
	for _, kind := range SchemaKinds {
		got, err := Schema(kind)
		if err != nil {
			t.Fatal(err)
		}
		// The example tree carries the schemas for editors
		// (examples/campus/.vscode/settings.json).
		for _, golden := range []string{filepath.Join("testdata", "schema", kind+".json"), filepath.Join("..", "..", "examples", "campus", ".schema", kind+".json")} {
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("schema %s differs from %s; rerun with -update and review", kind, golden)
			}
		}
	}
	if _, err := Schema("nope"); err == nil {
		t.Error("unknown schema kind accepted")
	}
}

// schemaDrafts are the drafts the schemas are checked under: the one they
// declare (draft-07, what editors implement) and the current one.
var schemaDrafts = []string{"http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2020-12/schema"}

// draftNames name schemaDrafts in subtests.
var draftNames = []string{"draft-07", "2020-12"}

// schemaSets compiles the four schemas with a real JSON Schema validator,
// once per draft of schemaDrafts.
func schemaSets(t testing.TB) []map[string]*jsonschema.Schema {
	var out []map[string]*jsonschema.Schema
	for _, d := range schemaDrafts {
		out = append(out, schemasFor(t, d))
	}
	return out
}

// schemasFor compiles the four schemas as draft.
func schemasFor(t testing.TB, draft string) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	out := map[string]*jsonschema.Schema{}
	for _, kind := range SchemaKinds {
		b, err := Schema(kind)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if doc.(map[string]any)["$schema"] != schemaDrafts[0] {
			t.Fatalf("%s declares %v", kind, doc.(map[string]any)["$schema"])
		}
		doc.(map[string]any)["$schema"] = draft
		if err := c.AddResource(kind+".json", doc); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range SchemaKinds {
		s, err := c.Compile(kind + ".json")
		if err != nil {
			t.Fatalf("compile %s: %v", kind, err)
		}
		out[kind] = s
	}
	return out
}

// yamlValue parses a YAML file as the loader does and returns what a
// schema validator sees.
func yamlValue(t testing.TB, name string, data []byte) (any, error) {
	t.Helper()
	n, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	return n.jsonValue(), nil
}

// treeKinds returns every YAML file of the tree in dir (relative, slash
// separated) with its kind, as the loader classifies it; the files
// site.yaml names (inventory) are left out.
func treeKinds(t testing.TB, dir string) map[string]string {
	t.Helper()
	tree, err := Load(dir)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	kinds := map[string]string{SiteFileName: "site"}
	for _, d := range tree.Defaults {
		kinds[d.Source] = "defaults"
	}
	for _, s := range tree.Services {
		kinds[s.Source] = "service"
	}
	for _, n := range tree.Nodes {
		kinds[n.Source] = "node"
	}
	// Every YAML file of the tree is one of them, or named by site.yaml.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") && kinds[rel] == "" && rel != path.Clean(tree.Site.Inventory) {
			t.Errorf("%s: the test does not know the kind of %s", dir, rel)
		}
		return nil
	})
	return kinds
}

// TestSchemaAcceptsValidTrees: every file of examples/ and of the valid
// test trees passes its schema, in a real validator.
func TestSchemaAcceptsValidTrees(t *testing.T) {
	sets := schemaSets(t)
	trees := []string{"testdata/base"}
	ex, _ := filepath.Glob("../../examples/*/site.yaml")
	for _, s := range ex {
		trees = append(trees, filepath.Dir(s))
	}
	if len(trees) < 2 {
		t.Fatal("no example trees found")
	}
	// And a generated site of the scale benchmark: every kind of service
	// it makes.
	gen := filepath.Join(t.TempDir(), "gen")
	if _, err := scale.Generate("../../examples/campus", gen, 40); err != nil {
		t.Fatal(err)
	}
	trees = append(trees, gen)
	counts := map[string]int{}
	for _, dir := range trees {
		for rel, kind := range treeKinds(t, dir) {
			data, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			v, err := yamlValue(t, rel, data)
			if err != nil {
				t.Fatal(err)
			}
			for i, sch := range sets {
				if err := sch[kind].Validate(v); err != nil {
					t.Errorf("%s/%s (%s, %s): %v", dir, rel, kind, draftNames[i], err)
				}
			}
			counts[kind]++
		}
	}
	for _, kind := range SchemaKinds {
		if counts[kind] == 0 {
			t.Errorf("no %s file validated", kind)
		}
	}
	t.Logf("validated %v", counts)
}

// schemaDetects lists the broken trees with a mistake a schema can see in
// one file (unknown field, wrong type, bad enum, range, grammar), with the
// files that must fail. Every other broken tree's files must pass their
// schemas: the schema never rejects what only the tree, the inventory or
// DNS make wrong, and it never flags a correct file.
var schemaDetects = map[string][]string{
	"bad-bool":                          {"svc.yaml"},
	"bgp-node-hostile":                  {"nodes/lb2.yaml"},
	"bgp-service-hostile":               {"svc.yaml"},
	"bad-duration":                      {"svc.yaml"},
	"bad-prefix":                        {"svc.yaml"},
	"cr-in-crlf-file":                   {"svc.yaml"}, // owner "team web"
	"empty-string-value":                {"svc.yaml"},
	"lock-inside-list":                  {"defaults.yaml"},
	"lock-unknown-field":                {"team/defaults.yaml"},
	"long-scalar-file":                  {"svc.yaml"},
	"long-value-quoted-short":           {"svc.yaml"},
	"many-errors-sorted":                {"a.yaml", "z.yaml"},
	"monitoring-bad":                    {"site.yaml"},
	"node-bad-router-id":                {"nodes/lb2.yaml"},
	"not-utf8":                          {"svc.yaml"},
	"port-out-of-range":                 {"svc.yaml"},
	"redirect-bad-from":                 {"svc.yaml"},
	"site-unknown-key":                  {"site.yaml"},
	"tls-certificate-empty":             {"team/svc.yaml"},
	"typo-enum":                         {"svc.yaml"},
	"typo-key":                          {"svc.yaml"},
	"typo-nested-key":                   {"svc.yaml"},
	"wrong-type-int":                    {"svc.yaml"},
	"wrong-type-list":                   {"svc.yaml"},
	"wrong-type-map":                    {"svc.yaml"},
	"yaml-error-in-defaults-no-cascade": {"team/sub/s2.yaml"}, // bogus key
}

// TestSchemaRefusesBrokenTrees runs the files of each broken tree through
// the schemas.
func TestSchemaRefusesBrokenTrees(t *testing.T) {
	for i, sch := range schemaSets(t) {
		t.Run(draftNames[i], func(t *testing.T) { refusesBrokenTrees(t, sch) })
	}
}

func refusesBrokenTrees(t *testing.T, sch map[string]*jsonschema.Schema) {
	cases, err := os.ReadDir("testdata/broken")
	if err != nil {
		t.Fatal(err)
	}
	for name := range schemaDetects {
		if _, err := os.Stat(filepath.Join("testdata/broken", name)); err != nil {
			t.Errorf("schemaDetects names %s: %v", name, err)
		}
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata/broken", c.Name())
			var failed []string
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") || d.Type()&fs.ModeSymlink != 0 {
					return nil
				}
				rel, _ := filepath.Rel(dir, p)
				rel = filepath.ToSlash(rel)
				kind := fileKind(rel)
				if kind == "" {
					return nil
				}
				data, _ := os.ReadFile(p)
				v, perr := yamlValue(t, rel, data)
				if perr != nil {
					return nil // not YAML: no schema sees it
				}
				if err := sch[kind].Validate(v); err != nil {
					failed = append(failed, rel)
					t.Logf("%s: %s", rel, yamltextShort(err.Error()))
				}
				return nil
			})
			want, detect := schemaDetects[c.Name()]
			switch {
			case detect && !slices.Equal(failed, want):
				t.Errorf("schema refuses %v, want %v (the loader refuses them)", failed, want)
			case !detect && len(failed) > 0:
				t.Errorf("schema refuses %v, whose mistake no schema can see: a correct file flagged, or add the case to schemaDetects", failed)
			}
		})
	}
}

// yamltextShort cuts a long validator message for the log.
func yamltextShort(s string) string {
	if len(s) > 600 {
		return s[:600] + "..."
	}
	return s
}

// fileKind classifies a file of a broken tree laid over testdata/base.
func fileKind(rel string) string {
	switch {
	case rel == SiteFileName:
		return "site"
	case rel == "inventory.yaml":
		return ""
	case path.Base(rel) == DefaultsFileName:
		return "defaults"
	case strings.HasPrefix(rel, "nodes/"):
		return "node"
	}
	return "service"
}

// TestSchemaAgreesWithLoader: for short files around the short forms,
// booleans, numbers as strings and null, the schema accepts exactly what
// the loader's decoder accepts.
func TestSchemaAgreesWithLoader(t *testing.T) {
	for i, sch := range schemaSets(t) {
		t.Run(draftNames[i], func(t *testing.T) { agreesWithLoader(t, sch) })
	}
}

func agreesWithLoader(t *testing.T, sch map[string]*jsonschema.Schema) {
	accepted, refused := 0, 0
	for _, tc := range []struct{ kind, file string }{
		{"service", "tls: on"},
		{"service", "tls: ON"},
		{"service", "tls: 'yes'"},
		{"service", "tls: off"},
		{"service", "tls: true"},
		{"service", "tls: maybe"},
		{"service", "tls: 1"},
		{"service", "tls: {enabled: on, min_version: 1.3}"},
		{"service", "tls: {min_version: 1.4}"},
		{"service", "tls: {min_version: '1.2'}"},
		{"service", "tls: {hsts: 63072000}"},
		{"service", "tls: {hsts: '5'}"},
		{"service", "tls: null"},
		{"service", "tls: []"},
		{"service", "backend: web"},
		{"service", "backend: 5"},
		{"service", "backend: [web]"},
		{"service", "backend: {group: web, check: tcp}"},
		{"service", "backend: {check: tcp4}"},
		{"service", "backend: {check: {expect: 200}}"},
		{"service", "backend: {check: {interval: 5s}}"},
		{"service", "backend: {check: {interval: 5}}"},
		{"service", "backend: {check: {rise: 0}}"},
		{"service", "backend: {servers: [{name: web1, weight: 0}]}"},
		{"service", "backend: {servers: [{weight: 2}]}"},
		{"service", "backend: {min_up: null}"},
		{"service", "listeners: [443, {port: 80, ipv6: no}]"},
		{"service", "listeners: ['443']"},
		{"service", "listeners: [0]"},
		{"service", "listeners: [{tls: on}]"},
		{"service", "transparent: yes"},
		{"service", "transparent: {intercept: [192.0.2.0/24]}"},
		{"service", "timeouts: {client: 1h}"},
		{"service", "owner: ''"},
		{"service", "fqdn: null"},
		{"service", "colour: blue"},
		{"service", ""},
		{"defaults", "defaults: {fqdn: null, backend: null, tls: on}"},
		{"defaults", "defaults: {backend: {software: apache3}}"},
		{"defaults", "lock: [tls.min_version, backend]"},
		{"defaults", "lock: [tls.minversion]"},
		{"defaults", "policy: {backend_groups: ['typo3_*']}"},
		{"defaults", ""},
		{"node", "router_id: 192.0.2.1\nasn: 65000\nbfd: on"},
		{"node", "router_id: 192.0.2.1\nasn: 0"},
		{"node", "router_id: 192.0.2.1"},
		{"node", "router_id: 192.0.2.1\nasn: 65000\nroute_reflectors: [{name: rr1, address: 192.0.2.9}]"},
		{"site", "site: test"},
		{"site", "site: test\nnodes: null"},
		{"site", "inventory: inv.yaml"},
		{"site", "site: null"},
		{"site", "site: test\nmonitoring: {hosts: []}"},
	} {
		v, err := yamlValue(t, "x.yaml", []byte(tc.file))
		if err != nil {
			t.Fatal(err)
		}
		schemaOK := sch[tc.kind].Validate(v) == nil
		loaderErr := decodeFile(tc.kind, tc.file)
		if schemaOK != (loaderErr == nil) {
			t.Errorf("%s %q: schema accepts: %v, loader: %v", tc.kind, tc.file, schemaOK, loaderErr)
		}
		if loaderErr == nil {
			accepted++
		} else {
			refused++
		}
	}
	if accepted < 20 || refused < 15 {
		t.Errorf("the table has %d files the loader accepts and %d it refuses: too few of either", accepted, refused)
	}
}

// decodeFile decodes one file of a kind as the loader does (the file's own
// checks: decoding, required fields of a site or node, lock paths).
func decodeFile(kind, file string) error {
	fsys := fstest.MapFS{SiteFileName: {Data: []byte("site: test\n")}}
	switch kind {
	case "service":
		// The defaults give what a service may leave out.
		fsys[DefaultsFileName] = &fstest.MapFile{Data: []byte("defaults: {fqdn: a.example.org, backend: web}\n")}
		fsys["svc.yaml"] = &fstest.MapFile{Data: []byte(file)}
	case "defaults":
		fsys[DefaultsFileName] = &fstest.MapFile{Data: []byte(file)}
	case "node":
		fsys["nodes/lb1.yaml"] = &fstest.MapFile{Data: []byte(file)}
	case "site":
		fsys[SiteFileName] = &fstest.MapFile{Data: []byte(file)}
	}
	_, err := LoadFS(fsys, "")
	return err
}

// TestSchemaExamples: the examples each schema carries pass it.
func TestSchemaExamples(t *testing.T) {
	for _, sch := range schemaSets(t) {
		schemaExamples(t, sch)
	}
}

func schemaExamples(t *testing.T, sch map[string]*jsonschema.Schema) {
	for _, kind := range SchemaKinds {
		s, err := schemaMap(kind)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range s["examples"].([]any) {
			// Round-trip through JSON: what an editor reads.
			b, _ := json.Marshal(ex)
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch[kind].Validate(v); err != nil {
				t.Errorf("example of %s: %v", kind, err)
			}
		}
	}
}

// TestSchemaCoversDecoder: every key the decoder accepts, at every level,
// is a property in the schema, with the same enums.
func TestSchemaCoversDecoder(t *testing.T) {
	b, err := Schema("service")
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	// pick returns the alternative of schema (through anyOf) that has key.
	var pick func(schema map[string]any, key string) map[string]any
	pick = func(schema map[string]any, key string) map[string]any {
		if _, ok := schema[key]; ok {
			return schema
		}
		alts, _ := schema["anyOf"].([]any)
		for _, a := range alts {
			if m := pick(a.(map[string]any), key); m != nil {
				return m
			}
		}
		return nil
	}
	var walk func(t *testing.T, typ reflect.Type, schema map[string]any, path string)
	walk = func(t *testing.T, typ reflect.Type, schema map[string]any, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			if typ.Kind() == reflect.Slice {
				schema, _ = pick(schema, "items")["items"].(map[string]any)
			}
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || reflect.PointerTo(typ).Implements(scalarDecoderType) {
			return
		}
		props, _ := pick(schema, "properties")["properties"].(map[string]any)
		for _, f := range infoOf(typ).fields {
			p, ok := props[f.name].(map[string]any)
			if !ok {
				t.Errorf("schema lacks %s%s", path, f.name)
				continue
			}
			if len(f.enum) > 0 {
				e := pick(p, "enum")
				if e == nil || len(e["enum"].([]any)) < len(f.enum) {
					t.Errorf("%s%s: enum differs", path, f.name)
				}
			}
			walk(t, typ.Field(f.index).Type, p, path+f.name+".")
		}
	}
	walk(t, reflect.TypeFor[Service](), s, "")
}
