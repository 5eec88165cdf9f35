package intent

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/lbctl/lbctl/bundle/internal/yamlpos"
	"github.com/lbctl/lbctl/bundle/internal/yamltext"
)

// The decoder maps node trees onto the intent types by reflection, driven by
// the struct tags: yaml (key), enum, min, max, required. It is strict: an
// unknown key, a value of the wrong type or out of range is an error at the
// value's position, and decoding goes on to find the next one.

// scalarDecoder is implemented (on the pointer) by types written as one
// scalar, such as Duration and Prefix.
type scalarDecoder interface {
	decodeScalar(n *node) error
}

// shorthander is implemented by struct types that have a short form, such as
// "tls: true". shorthand returns the long form of n, or nil if n is not a
// short form.
type shorthander interface {
	shorthand(n *node) *node
}

var (
	scalarDecoderType = reflect.TypeFor[scalarDecoder]()
	shorthanderType   = reflect.TypeFor[shorthander]()
)

// field is one decodable struct field.
type field struct {
	name     string
	index    int
	enum     []string
	min, max *int64
	required bool
	doc      string
	// grammar names the field's grammar in the schema (grammar.go);
	// unique says the loader refuses a list that repeats an item.
	grammar string
	unique  bool
}

type structInfo struct {
	fields []field
	byName map[string]int
	names  []string
}

var structCache sync.Map // reflect.Type -> *structInfo

func infoOf(t reflect.Type) *structInfo {
	if v, ok := structCache.Load(t); ok {
		return v.(*structInfo)
	}
	si := &structInfo{byName: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("yaml")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		f := field{name: name, index: i, required: sf.Tag.Get("required") == "true", doc: sf.Tag.Get("doc"),
			grammar: sf.Tag.Get("grammar"), unique: sf.Tag.Get("unique") == "true"}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, ",")
		}
		if m := sf.Tag.Get("min"); m != "" {
			v, _ := strconv.ParseInt(m, 10, 64)
			f.min = &v
		}
		if m := sf.Tag.Get("max"); m != "" {
			v, _ := strconv.ParseInt(m, 10, 64)
			f.max = &v
		}
		si.byName[name] = len(si.fields)
		si.fields = append(si.fields, f)
		si.names = append(si.names, name)
	}
	structCache.Store(t, si)
	return si
}

// expand rewrites the short forms in n, guided by the Go type t it will be
// decoded into. Nodes that do not fit t are left alone for the decoder to
// report. Unchanged subtrees are shared.
func expand(n *node, t reflect.Type) *node {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || reflect.PointerTo(t).Implements(scalarDecoderType) {
		return n
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.kind != kindMap {
			if t.Implements(shorthanderType) {
				if long := reflect.Zero(t).Interface().(shorthander).shorthand(n); long != nil {
					n = long
				}
			}
			if n.kind != kindMap {
				return n
			}
		}
		si := infoOf(t)
		var out *node
		for i, k := range n.keys {
			fi, ok := si.byName[k.value]
			if !ok {
				continue
			}
			v := expand(n.vals[i], t.Field(si.fields[fi].index).Type)
			if v != n.vals[i] {
				if out == nil {
					out = &node{kind: kindMap, pos: n.pos, keys: n.keys, vals: slices.Clone(n.vals)}
				}
				out.vals[i] = v
			}
		}
		if out != nil {
			return out
		}
		return n
	case reflect.Slice:
		if n.kind != kindSeq {
			return n
		}
		var out *node
		for i, it := range n.items {
			v := expand(it, t.Elem())
			if v != it {
				if out == nil {
					out = &node{kind: kindSeq, pos: n.pos, items: slices.Clone(n.items)}
				}
				out.items[i] = v
			}
		}
		if out != nil {
			return out
		}
	}
	return n
}

type decoder struct {
	errs *errList
}

// join appends a key to a dotted path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) fail(n *node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.errs.Add(n.pos, "%s", msg)
}

// decode decodes n into v (addressable). A null node leaves v unset.
func (d *decoder) decode(n *node, v reflect.Value, path string, f *field) {
	if n.kind == kindNull {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, f)
		return
	}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		if n.kind != kindScalar {
			d.fail(n, path, "want a single value, got %s", n.describe())
			return
		}
		if err := sd.decodeScalar(n); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path, f)
	case reflect.String:
		d.decodeString(n, v, path, f)
	case reflect.Bool:
		b, ok := parseBool(n)
		if !ok {
			d.fail(n, path, "want a boolean (true/false, on/off, yes/no), got %s", n.describe())
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Uint32:
		d.decodeInt(n, v, path, f)
	default:
		panic(fmt.Sprintf("intent: cannot decode into %s", v.Type()))
	}
}

// decodeSlice decodes a list; f (the field's limits) applies to each item.
func (d *decoder) decodeSlice(n *node, v reflect.Value, path string, f *field) {
	if n.kind != kindSeq {
		d.fail(n, path, "want a list, got %s", n.describe())
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.items), len(n.items))
	for i, it := range n.items {
		d.decode(it, s.Index(i), fmt.Sprintf("%s[%d]", path, i), f)
	}
	v.Set(s)
}

// decodeString decodes a non-empty string, one of the field's enum if it
// has one.
func (d *decoder) decodeString(n *node, v reflect.Value, path string, f *field) {
	if n.kind != kindScalar || n.tag == tagBool {
		d.fail(n, path, "want a string, got %s", n.describe())
		return
	}
	if n.value == "" {
		// "" would silently stand for "not set", replacing what a
		// defaults file gives: null says that on purpose.
		d.fail(n, path, "empty string: remove the key, or write null to reset an inherited value")
		return
	}
	if f != nil && len(f.enum) > 0 && !slices.Contains(f.enum, n.value) {
		msg := fmt.Sprintf("%s is not one of %s", yamltext.Short(n.value), strings.Join(f.enum, ", "))
		if s := yamlpos.Suggest(n.value, f.enum); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.fail(n, path, "%s", msg)
		return
	}
	v.SetString(n.value)
}

// decodeInt decodes an integer within the field's range (a uint32 within
// its own).
func (d *decoder) decodeInt(n *node, v reflect.Value, path string, f *field) {
	i, ok := parseInt(n)
	if !ok {
		d.fail(n, path, "want an integer, got %s", n.describe())
		return
	}
	lo, hi := int64(-1<<62), int64(1<<62)
	if v.Kind() == reflect.Uint32 {
		lo, hi = 0, 1<<32-1
	}
	if f != nil && f.min != nil {
		lo = *f.min
	}
	if f != nil && f.max != nil {
		hi = *f.max
	}
	if i < lo || i > hi {
		d.fail(n, path, "%d out of range %d..%d", i, lo, hi)
		return
	}
	if v.Kind() == reflect.Uint32 {
		v.SetUint(uint64(i))
	} else {
		v.SetInt(i)
	}
}

func (d *decoder) decodeStruct(n *node, v reflect.Value, path string) {
	if n.kind != kindMap {
		want := "a mapping"
		if sh, ok := v.Interface().(shorthandSchemaer); ok {
			short := sh.shorthandSchema()
			if alts, ok := short["anyOf"].([]any); ok {
				short = alts[0].(map[string]any)
			}
			switch short["type"] {
			case "boolean":
				want = "a boolean (true/false, on/off, yes/no) or a mapping"
			case "string":
				want = "a name or a mapping"
			case "integer":
				want = "a port number or a mapping"
			}
		}
		d.fail(n, path, "want %s, got %s", want, n.describe())
		return
	}
	si := infoOf(v.Type())
	for i, k := range n.keys {
		fi, ok := si.byName[k.value]
		if !ok {
			msg := fmt.Sprintf("unknown field %s", short(k.value))
			if path != "" {
				msg += " in " + path
			}
			if s := yamlpos.Suggest(k.value, si.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errs.Add(k.pos, "%s", msg)
			continue
		}
		f := &si.fields[fi]
		d.decode(n.vals[i], v.Field(f.index), join(path, f.name), f)
	}
}

// checkRequired reports required fields missing from the (merged) tree n of
// type t, at pos.
func checkRequired(n *node, t reflect.Type, path string, pos Pos, errs *errList) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(scalarDecoderType) {
		return
	}
	if n == nil || n.kind != kindMap {
		return
	}
	si := infoOf(t)
	for _, f := range si.fields {
		v := n.get(f.name)
		if f.required && (v == nil || v.kind == kindNull) {
			errs.Add(pos, "%s is required", join(path, f.name))
			continue
		}
		ft := t.Field(f.index).Type
		if ft.Kind() == reflect.Slice && v != nil && v.kind == kindSeq {
			for i, it := range v.items {
				if it.kind == kindMap {
					checkRequired(it, ft.Elem(), fmt.Sprintf("%s[%d]", join(path, f.name), i), it.pos, errs)
				}
			}
			continue
		}
		if v != nil && v.kind == kindMap {
			checkRequired(v, ft, join(path, f.name), pos, errs)
		}
	}
}
