package intent

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/lbctl/lbctl/bundle/internal/yamlpos"
	"github.com/lbctl/lbctl/bundle/internal/yamltext"
)

// kind is the shape of a node.
type kind uint8

const (
	kindNull kind = iota
	kindScalar
	kindMap
	kindSeq
)

// tag is the YAML type of a scalar.
type tag uint8

const (
	tagStr tag = iota
	tagInt
	tagFloat
	tagBool
	tagNull
)

func (t tag) String() string {
	return [...]string{"string", "integer", "number", "boolean", "null"}[t]
}

// node is a YAML value with its position: the loader's own small tree,
// independent of the YAML library, that the defaults merge, the lock
// checks and the decoder work on. Aliases are resolved (shared subtrees),
// merge keys applied. Nodes are never mutated after parsing: merging builds
// new maps and shares the rest.
type node struct {
	kind  kind
	tag   tag
	value string // scalar text (for kindScalar)
	pos   Pos
	// keys and vals of a map, in document order; keys are scalars.
	keys []*node
	vals []*node
	// items of a sequence.
	items []*node
}

// describe names the node's type for error messages.
func (n *node) describe() string {
	switch n.kind {
	case kindMap:
		return "mapping"
	case kindSeq:
		return "list"
	case kindNull:
		return "null"
	}
	if n.tag == tagStr {
		return "string " + yamltext.Short(n.value)
	}
	return fmt.Sprintf("%s %s", n.tag, n.value)
}

// get returns the value of key in a map node, or nil.
func (n *node) get(key string) *node {
	if n == nil || n.kind != kindMap {
		return nil
	}
	for i, k := range n.keys {
		if k.value == key {
			return n.vals[i]
		}
	}
	return nil
}

// keyNode returns the key node of key in a map node, or nil.
func (n *node) keyNode(key string) *node {
	if n == nil || n.kind != kindMap {
		return nil
	}
	for _, k := range n.keys {
		if k.value == key {
			return k
		}
	}
	return nil
}

// maxNodes bounds the size of a document after alias expansion, so that an
// "billion laughs" file cannot exhaust memory or time.
const maxNodes = 100_000

// parseYAML parses one YAML document into a node tree. An empty document
// gives a null node. Errors carry the file position.
func parseYAML(file string, data []byte) (*node, *Error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(file, err)
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	switch len(docs) {
	case 0:
		return &node{kind: kindNull, tag: tagNull, pos: Pos{File: file, Line: 1, Col: 1}}, nil
	case 1:
	default:
		p := yamlpos.TokenPos(file, docs[1].GetToken())
		return nil, &Error{Pos: p, Msg: "a file holds exactly one YAML document"}
	}
	c := converter{file: file, anchors: map[string]*node{}, sizes: map[*node]int{}}
	n, size := c.convert(docs[0].Body)
	if c.err != nil {
		return nil, c.err
	}
	if size > maxNodes {
		return nil, &Error{Pos: n.pos, Msg: fmt.Sprintf("document too large: more than %d values after expanding aliases", maxNodes)}
	}
	return n, nil
}

// yamlError turns a go-yaml error into a positioned Error.
func yamlError(file string, err error) *Error {
	e := yamlpos.Syntax(file, err)
	e.Msg = "yaml: " + e.Msg
	return e
}

type converter struct {
	file    string
	anchors map[string]*node
	// sizes of shared (anchored) subtrees, to bound alias expansion.
	sizes map[*node]int
	err   *Error
	depth int
}

func (c *converter) fail(tk *token.Token, format string, args ...any) {
	if c.err == nil {
		c.err = &Error{Pos: yamlpos.TokenPos(c.file, tk), Msg: fmt.Sprintf(format, args...)}
	}
}

const maxDepth = 100

// addSize adds expanded sizes, saturating above maxNodes: nested aliases
// multiply sizes, which would otherwise overflow.
func addSize(a, b int) int { return min(a+b, maxNodes+1) }

// convert returns the node for n and its expanded size.
func (c *converter) convert(n ast.Node) (*node, int) {
	if n == nil {
		return c.null(nil)
	}
	if c.err != nil {
		return c.null(n.GetToken())
	}
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxDepth {
		c.fail(n.GetToken(), "nesting deeper than %d levels", maxDepth)
		return c.null(n.GetToken())
	}
	switch v := n.(type) {
	case *ast.NullNode:
		return c.null(v.GetToken())
	case *ast.StringNode:
		return c.scalar(tagStr, v.GetToken(), v.Value)
	case *ast.LiteralNode:
		s := ""
		if v.Value != nil {
			s = v.Value.Value
		}
		return c.scalar(tagStr, v.GetToken(), s)
	case *ast.IntegerNode:
		return c.scalar(tagInt, v.GetToken(), v.GetToken().Value)
	case *ast.FloatNode:
		return c.scalar(tagFloat, v.GetToken(), v.GetToken().Value)
	case *ast.InfinityNode, *ast.NanNode:
		return c.scalar(tagFloat, v.GetToken(), v.GetToken().Value)
	case *ast.BoolNode:
		return c.scalar(tagBool, v.GetToken(), v.GetToken().Value)
	case *ast.TagNode:
		return c.tagged(v)
	case *ast.AnchorNode:
		return c.anchor(v)
	case *ast.AliasNode:
		return c.alias(v)
	case *ast.MappingNode:
		return c.mapping(v.GetToken(), v.Values)
	case *ast.MappingValueNode:
		return c.mapping(v.GetToken(), []*ast.MappingValueNode{v})
	case *ast.SequenceNode:
		return c.sequence(v)
	case *ast.DocumentNode:
		return c.convert(v.Body)
	case *ast.CommentGroupNode, *ast.CommentNode:
		return c.null(v.GetToken())
	default:
		c.fail(n.GetToken(), "unsupported YAML construct %s", n.Type())
		return c.null(n.GetToken())
	}
}

func (c *converter) null(tk *token.Token) (*node, int) {
	return &node{kind: kindNull, tag: tagNull, pos: yamlpos.TokenPos(c.file, tk)}, 1
}

// scalar is a one-line value without control characters.
func (c *converter) scalar(t tag, tk *token.Token, value string) (*node, int) {
	if r, bad := yamltext.ControlIn(value); bad {
		what := "control character " + yamltext.Name(r)
		if r == '\n' {
			what = "line break (values are one line)"
		}
		c.fail(tk, "value %s holds a %s", yamltext.Short(value), what)
	}
	return &node{kind: kindScalar, tag: t, value: value, pos: yamlpos.TokenPos(c.file, tk)}, 1
}

// anchor converts an anchored value and remembers it for its aliases.
func (c *converter) anchor(v *ast.AnchorNode) (*node, int) {
	name := ""
	if v.Name != nil {
		name = v.Name.String()
	}
	val, size := c.convert(v.Value)
	c.anchors[name] = val
	c.sizes[val] = size
	return val, size
}

// alias is the anchored value it names, shared, with its expanded size.
func (c *converter) alias(v *ast.AliasNode) (*node, int) {
	name := ""
	if v.Value != nil {
		name = v.Value.String()
	}
	val, ok := c.anchors[name]
	if !ok {
		c.fail(v.GetToken(), "unknown alias %q", name)
		return c.null(v.GetToken())
	}
	return val, c.sizes[val]
}

func (c *converter) sequence(v *ast.SequenceNode) (*node, int) {
	out := &node{kind: kindSeq, pos: yamlpos.TokenPos(c.file, v.GetToken())}
	size := 1
	for _, e := range v.Values {
		item, s := c.convert(e)
		out.items = append(out.items, item)
		size = addSize(size, s)
	}
	return out, size
}

// scalarTags are the standard scalar tags, short and long, and the tag
// each gives a scalar.
var scalarTags = map[string]tag{
	"!!str": tagStr, "tag:yaml.org,2002:str": tagStr,
	"!!int": tagInt, "tag:yaml.org,2002:int": tagInt,
	"!!bool": tagBool, "tag:yaml.org,2002:bool": tagBool,
	"!!float": tagFloat, "tag:yaml.org,2002:float": tagFloat,
}

// tagged handles explicit tags: the standard scalar tags convert, anything
// else is refused.
func (c *converter) tagged(v *ast.TagNode) (*node, int) {
	val, size := c.convert(v.Value)
	t := v.GetToken().Value
	if st, ok := scalarTags[t]; ok && val.kind == kindScalar {
		cp := *val
		cp.tag = st
		return &cp, size
	}
	switch t {
	case "!!null", "tag:yaml.org,2002:null":
		return &node{kind: kindNull, tag: tagNull, pos: val.pos}, size
	case "!!map", "tag:yaml.org,2002:map":
		if val.kind == kindMap {
			return val, size
		}
	case "!!seq", "tag:yaml.org,2002:seq":
		if val.kind == kindSeq {
			return val, size
		}
	}
	c.fail(v.GetToken(), "unsupported tag %s here", t)
	return val, size
}

func (c *converter) mapping(tk *token.Token, values []*ast.MappingValueNode) (*node, int) {
	out := &node{kind: kindMap, pos: yamlpos.TokenPos(c.file, tk)}
	size := 1
	var merged []*node // maps from merge keys, applied after explicit keys
	seen := map[string]bool{}
	for _, mv := range values {
		if mv == nil {
			continue
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			val, s := c.convert(mv.Value)
			size = addSize(size, s)
			switch val.kind {
			case kindMap:
				merged = append(merged, val)
			case kindSeq:
				for _, it := range val.items {
					if it.kind != kindMap {
						c.fail(mv.Key.GetToken(), "merge key << needs a mapping or a list of mappings")
						return out, size
					}
					merged = append(merged, it)
				}
			default:
				c.fail(mv.Key.GetToken(), "merge key << needs a mapping or a list of mappings")
				return out, size
			}
			continue
		}
		key, _ := c.convert(mv.Key)
		if key.kind != kindScalar {
			c.fail(mv.Key.GetToken(), "mapping keys must be plain strings")
			return out, size
		}
		if seen[key.value] {
			c.fail(mv.Key.GetToken(), "duplicate key %q", key.value)
			return out, size
		}
		seen[key.value] = true
		// The value's position for an empty value is the key.
		val, s := c.convert(mv.Value)
		if val.kind == kindNull && val.pos.Line == 0 {
			val = &node{kind: kindNull, tag: tagNull, pos: key.pos}
		}
		size = addSize(size, s+1)
		out.keys = append(out.keys, key)
		out.vals = append(out.vals, val)
	}
	// Merge keys: earlier merged maps win over later ones, explicit keys win
	// over all.
	for _, m := range merged {
		for i, k := range m.keys {
			if !seen[k.value] {
				seen[k.value] = true
				out.keys = append(out.keys, k)
				out.vals = append(out.vals, m.vals[i])
			}
		}
	}
	return out, size
}
