package intent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// schemaer is implemented by scalar types with their own JSON Schema.
type scalarSchemaer interface{ scalarSchema() map[string]any }

// shorthandSchemaer gives the schema of a struct type's short form.
type shorthandSchemaer interface{ shorthandSchema() map[string]any }

// SchemaKinds are the file kinds Schema knows.
var SchemaKinds = []string{"service", "defaults", "node", "site"}

// Schema returns a JSON Schema (draft 2020-12) of one kind of intents file
// ("service", "defaults", "node" or "site"), generated from the Go types
// the loader decodes into, so that it cannot drift from the loader.
func Schema(kind string) ([]byte, error) {
	var t reflect.Type
	var title string
	switch kind {
	case "service":
		t, title = reflect.TypeFor[Service](), "lbctl service file"
	case "defaults":
		t, title = reflect.TypeFor[DefaultsFile](), "lbctl defaults.yaml"
	case "node":
		t, title = reflect.TypeFor[NodeProfile](), "lbctl node profile"
	case "site":
		t, title = reflect.TypeFor[SiteFile](), "lbctl site.yaml"
	default:
		return nil, fmt.Errorf("schema: unknown kind %q (want service, defaults, node or site)", kind)
	}
	s := schemaOf(t, kind == "defaults", true)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://lbctl.invalid/schema/" + kind + ".json"
	s["title"] = title
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return buf.Bytes(), nil
}

// schemaOf returns the schema of t; partial drops required fields (the
// defaults are partial services), top says t is a file's root.
func schemaOf(t reflect.Type, partial, top bool) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[scalarDecoder]()) {
		return reflect.Zero(t).Interface().(scalarSchemaer).scalarSchema()
	}
	switch t.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		si := infoOf(t)
		for _, f := range si.fields {
			ft := t.Field(f.index).Type
			fs := schemaOf(ft, partial || (top && f.name == "defaults"), false)
			if f.doc != "" {
				fs["description"] = f.doc
			}
			if len(f.enum) > 0 {
				fs["enum"] = f.enum
			}
			if f.min != nil {
				fs["minimum"] = *f.min
			}
			if f.max != nil {
				fs["maximum"] = *f.max
			}
			props[f.name] = fs
			if f.required && !partial {
				required = append(required, f.name)
			}
		}
		obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			obj["required"] = required
		}
		if sh, ok := reflect.Zero(t).Interface().(shorthandSchemaer); ok && !top {
			return map[string]any{"anyOf": []any{sh.shorthandSchema(), obj}}
		}
		return obj
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), partial, false)}
	case reflect.String:
		// Not empty (null resets a value), one line, no control
		// characters: what the loader accepts.
		return map[string]any{"type": "string", "minLength": 1, "pattern": `^[^\x00-\x1f\x7f-\x9f]*$`}
	case reflect.Bool:
		return map[string]any{"anyOf": []any{
			map[string]any{"type": "boolean"},
			map[string]any{"enum": []string{"on", "off", "yes", "no", "true", "false"}},
		}}
	case reflect.Int, reflect.Int64, reflect.Uint32:
		return map[string]any{"type": "integer"}
	}
	panic(fmt.Sprintf("intent: no schema for %s", t))
}
