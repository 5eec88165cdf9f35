package intent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
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
		golden := filepath.Join("testdata", "schema", kind+".json")
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
	if _, err := Schema("nope"); err == nil {
		t.Error("unknown schema kind accepted")
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
	var walk func(t *testing.T, typ reflect.Type, schema map[string]any, path string)
	walk = func(t *testing.T, typ reflect.Type, schema map[string]any, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			if typ.Kind() == reflect.Slice {
				schema, _ = schema["items"].(map[string]any)
			}
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || reflect.PointerTo(typ).Implements(scalarDecoderType) {
			return
		}
		if alts, ok := schema["anyOf"].([]any); ok {
			schema = alts[1].(map[string]any)
		}
		props, _ := schema["properties"].(map[string]any)
		for _, f := range infoOf(typ).fields {
			p, ok := props[f.name].(map[string]any)
			if !ok {
				t.Errorf("schema lacks %s%s", path, f.name)
				continue
			}
			if len(f.enum) > 0 && len(p["enum"].([]any)) != len(f.enum) {
				t.Errorf("%s%s: enum differs", path, f.name)
			}
			walk(t, typ.Field(f.index).Type, p, path+f.name+".")
		}
	}
	walk(t, reflect.TypeFor[Service](), s, "")
}
