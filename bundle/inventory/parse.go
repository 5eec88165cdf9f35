package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/lbctl/lbctl/bundle/internal/yamlpos"
	"github.com/lbctl/lbctl/bundle/internal/yamltext"
)

// Bounds that keep a hostile or broken file (alias bombs, deep nesting)
// from taking unbounded time or memory.
const (
	maxNodes  = 1 << 20 // nodes visited, counting alias expansions
	maxDepth  = 64      // nesting of groups and of variable values
	maxErrors = 50
	// ansibleHost is the variable that holds a host's address.
	ansibleHost = "ansible_host"
	// groupPriority orders groups of the same depth (Ansible's
	// ansible_group_priority).
	groupPriority = "ansible_group_priority"
)

// Limits bound the inventory file before it is parsed (see docs/intents.md,
// "Limits"): its size, and its anchors and aliases, which make the YAML
// parser slow long before maxNodes applies.
var Limits = yamltext.Limits{MaxBytes: 16 << 20, MaxAliases: 10_000}

var errTooMany = errors.New("too many errors")

// Parse parses an inventory in the YAML format. path is used in error
// messages and Host.Source only. Errors carry "path:line:col"; independent
// errors are joined.
func Parse(path string, data []byte) (*Inventory, error) {
	data, p := yamltext.Check(data, Limits)
	if p != nil {
		return nil, &yamlpos.Error{Pos: yamlpos.Pos{File: path, Line: p.Line, Col: p.Col}, Msg: p.Msg}
	}
	f, err := parseYAML(data)
	if err != nil {
		if looksLikeINI(data) {
			return nil, fmt.Errorf("%w (this looks like an INI inventory; only the YAML format is supported)", syntaxError(path, err))
		}
		return nil, syntaxError(path, err)
	}
	d := &decoder{
		path:    path,
		anchors: map[string]ast.Node{},
		inv: &Inventory{
			path:   path,
			groups: map[string]*group{},
			hosts:  map[string]*host{},
		},
	}
	d.inv.ensureGroup(GroupAll)
	d.inv.ensureGroup(GroupUngrouped)
	d.document(f)
	if d.errs.Empty() {
		d.checkCycles()
	}
	if d.errs.Empty() {
		d.resolveAddresses()
	}
	if !d.errs.Empty() {
		return nil, d.errs.All()
	}
	return d.inv, nil
}

// parseYAML turns a panic of the YAML parser on odd input into an error.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("yaml parser failed: %v", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

// syntaxError is a YAML syntax error at its position in path.
func syntaxError(path string, err error) error { return yamlpos.Syntax(path, err) }

// looksLikeINI reports whether the first line that is not blank or a
// comment is an INI section header such as "[web]".
func looksLikeINI(data []byte) bool {
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		return strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") && !strings.Contains(line, ",")
	}
	return false
}

func (inv *Inventory) ensureGroup(name string) *group {
	g, ok := inv.groups[name]
	if !ok {
		g = &group{
			name:     name,
			hosts:    map[string]bool{},
			children: map[string]yamlpos.Pos{},
			parents:  map[string]bool{},
		}
		inv.groups[name] = g
	}
	return g
}

type decoder struct {
	path    string
	inv     *Inventory
	anchors map[string]ast.Node
	visited int
	errs    yamlpos.List
}

func (d *decoder) errorf(n ast.Node, format string, args ...any) {
	d.errorAt(nodePos(n), format, args...)
}

// errorAt adds a problem at a line and column of the file; after
// maxErrors, one "too many errors" ends the list.
func (d *decoder) errorAt(p yamlpos.Pos, format string, args ...any) {
	p.File = d.path
	switch {
	case d.errs.Len() < maxErrors:
		d.errs.Add(p, format, args...)
	case d.errs.Len() == maxErrors:
		d.errs.AddErr(&yamlpos.Error{Pos: yamlpos.Pos{File: d.path}, Msg: errTooMany.Error(), Err: errTooMany})
	}
}

// full reports whether decoding should stop.
func (d *decoder) full() bool { return d.errs.Len() > maxErrors }

func (d *decoder) document(f *ast.File) {
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			d.errorf(doc.Body, "inventory has several YAML documents; want one")
			return
		}
		body = doc.Body
	}
	if body == nil {
		return // an empty inventory
	}
	top, ok := d.mapping(body)
	if !ok {
		d.errorf(body, "inventory must be a mapping of group names (such as \"all:\"), got %s; only the YAML inventory format is supported", d.describe(body))
		return
	}
	for _, kv := range top {
		name, ok := d.key(kv.Key)
		if !ok {
			continue
		}
		d.group(name, kv.Value, 0)
	}
}

// deref registers anchors, resolves aliases and strips tags. It returns the
// node the value stands for, or nil for an absent value, and the tag if any.
func (d *decoder) deref(n ast.Node) (ast.Node, string, bool) {
	tag := ""
	for range maxDepth {
		d.visited++
		if d.visited > maxNodes {
			d.errorf(n, "inventory too large (more than %d nodes after alias expansion)", maxNodes)
			return nil, "", false
		}
		switch x := n.(type) {
		case nil:
			return nil, tag, true
		case *ast.AnchorNode:
			if x.Name != nil && x.Name.GetToken() != nil {
				d.anchors[x.Name.GetToken().Value] = x.Value
			}
			n = x.Value
		case *ast.AliasNode:
			if x.Value == nil || x.Value.GetToken() == nil {
				d.errorf(x, "alias without a name")
				return nil, "", false
			}
			name := x.Value.GetToken().Value
			target, ok := d.anchors[name]
			if !ok {
				d.errorf(x, "alias *%s refers to no anchor defined before it", name)
				return nil, "", false
			}
			n = target
		case *ast.TagNode:
			if x.Start != nil {
				tag = x.Start.Value
			}
			n = x.Value
		default:
			return n, tag, true
		}
	}
	d.errorf(n, "aliases and tags nested too deeply")
	return nil, "", false
}

// mapping returns the entries of n if it is a mapping (after aliases).
// A null value is an empty mapping.
func (d *decoder) mapping(n ast.Node) ([]*ast.MappingValueNode, bool) {
	v, _, ok := d.deref(n)
	if !ok {
		return nil, true // already reported
	}
	switch x := v.(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.MappingNode:
		return x.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{x}, true
	}
	return nil, false
}

// key returns the text of a mapping key.
func (d *decoder) key(n ast.Node) (string, bool) {
	if mk, ok := n.(*ast.MappingKeyNode); ok {
		n = mk.Value
	}
	v, _, ok := d.deref(n)
	if !ok {
		return "", false
	}
	switch x := v.(type) {
	case *ast.StringNode:
		if r, bad := yamltext.ControlIn(x.Value); bad {
			d.errorf(n, "name %s holds a control character %s", yamltext.Short(x.Value), yamltext.Name(r))
			return "", false
		}
		return x.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if tk := x.GetToken(); tk != nil {
			return tk.Value, true
		}
	case *ast.MergeKeyNode:
		return "<<", true
	}
	d.errorf(n, "key must be a string, got %s", d.describe(v))
	return "", false
}

func (d *decoder) group(name string, n ast.Node, depth int) {
	if d.full() {
		return
	}
	if depth > maxDepth {
		d.errorf(n, "group %q: groups nested more than %d deep", name, maxDepth)
		return
	}
	g := d.inv.ensureGroup(name)
	entries, ok := d.mapping(n)
	if !ok {
		d.errorf(n, "group %q: want a mapping with hosts, vars or children, got %s", name, d.describe(n))
		return
	}
	for _, kv := range entries {
		k, ok := d.key(kv.Key)
		if !ok {
			continue
		}
		switch k {
		case "hosts":
			d.hosts(g, kv.Value)
		case "vars":
			// Group variables are not kept, only what ansible_host
			// inheritance needs.
			vars, ah, nodes := d.vars(fmt.Sprintf("group %q", name), kv.Value)
			if ah != nil {
				g.ansibleHost = *ah
			}
			if p, ok := vars[groupPriority]; ok {
				switch p := p.(type) {
				case int64:
					g.priority = p
				case uint64:
					g.priority = int64(min(p, 1<<62))
				default:
					d.errorf(nodes[groupPriority].Value, "group %q: %s must be an integer, got %s", name, groupPriority, d.describe(nodes[groupPriority].Value))
				}
			}
		case "children":
			d.children(g, kv.Value, depth)
		default:
			d.errorf(kv.Key, "group %q: unknown key %q (want hosts, vars or children)", name, k)
		}
	}
}

func (d *decoder) children(g *group, n ast.Node, depth int) {
	entries, ok := d.mapping(n)
	if !ok {
		d.errorf(n, "group %q: children must be a mapping of group names, got %s", g.name, d.describe(n))
		return
	}
	for _, kv := range entries {
		name, ok := d.key(kv.Key)
		if !ok {
			continue
		}
		if name == GroupAll {
			d.errorf(kv.Key, "group %q: %q cannot be a child group", g.name, GroupAll)
			continue
		}
		if _, dup := g.children[name]; !dup {
			g.children[name] = nodePos(kv.Key)
		}
		d.inv.ensureGroup(name).parents[g.name] = true
		d.group(name, kv.Value, depth+1)
	}
}

func (d *decoder) hosts(g *group, n ast.Node) {
	entries, ok := d.mapping(n)
	if !ok {
		d.errorf(n, "group %q: hosts must be a mapping of host names (\"web1:\" with a null or a mapping of variables), got %s", g.name, d.describe(n))
		return
	}
	for _, kv := range entries {
		if d.full() {
			return
		}
		pattern, ok := d.key(kv.Key)
		if !ok {
			continue
		}
		names, err := expandHosts(pattern)
		if err != nil {
			d.errorf(kv.Key, "host %q: %v", pattern, err)
			continue
		}
		vars, _, _ := d.vars(fmt.Sprintf("host %q", pattern), kv.Value)
		for _, name := range names {
			h, ok := d.inv.hosts[name]
			if !ok {
				p := nodePos(kv.Key)
				h = &host{
					name:   name,
					vars:   map[string]any{},
					source: strings.TrimPrefix(fmt.Sprintf("%s:%d:%d", d.path, p.Line, p.Col), ":"),
					groups: map[string]bool{},
				}
				d.inv.hosts[name] = h
			}
			maps.Copy(h.vars, vars)
			h.groups[g.name] = true
			g.hosts[name] = true
		}
	}
}

// vars decodes a mapping of variables. It also returns ansible_host when
// set, after checking that it is a non-empty string, and the entry of each
// variable for error positions.
func (d *decoder) vars(owner string, n ast.Node) (map[string]any, *string, map[string]*ast.MappingValueNode) {
	entries, ok := d.mapping(n)
	if !ok {
		d.errorf(n, "%s: variables must be a mapping, got %s", owner, d.describe(n))
		return nil, nil, nil
	}
	out := map[string]any{}
	nodes := map[string]*ast.MappingValueNode{}
	d.mergeEntries(out, nodes, entries, 0)
	v, ok := out[ansibleHost]
	if !ok {
		return out, nil, nodes
	}
	// Point at the value, or at the key when the value is empty.
	var at ast.Node = nodes[ansibleHost]
	if kv := nodes[ansibleHost]; kv != nil && v != nil {
		at = kv.Value
	}
	s, isString := v.(string)
	switch {
	case !isString:
		d.errorf(at, "%s: %s must be a string, got %s", owner, ansibleHost, d.describe(nodes[ansibleHost].Value))
		return out, nil, nodes
	case strings.TrimSpace(s) == "":
		d.errorf(at, "%s: %s is empty", owner, ansibleHost)
		return out, nil, nodes
	}
	return out, &s, nodes
}

// mergeEntries adds the entries of a mapping to out; nodes, when not nil,
// records the value node of each key for error positions. Merge keys ("<<")
// add the keys of the merged mappings that are not set explicitly.
func (d *decoder) mergeEntries(out map[string]any, nodes map[string]*ast.MappingValueNode, entries []*ast.MappingValueNode, depth int) {
	explicit := map[string]bool{}
	var merges []*ast.MappingValueNode
	for _, kv := range entries {
		if d.full() {
			return
		}
		if _, isMerge := kv.Key.(*ast.MergeKeyNode); isMerge {
			merges = append(merges, kv)
			continue
		}
		k, ok := d.key(kv.Key)
		if !ok {
			continue
		}
		out[k] = d.value(kv.Value, depth+1)
		explicit[k] = true
		if nodes != nil {
			nodes[k] = kv
		}
	}
	for _, kv := range merges {
		v, _, ok := d.deref(kv.Value)
		if !ok {
			continue
		}
		var sources []ast.Node
		if seq, isSeq := v.(*ast.SequenceNode); isSeq {
			sources = seq.Values
		} else {
			sources = []ast.Node{v}
		}
		for _, src := range sources {
			merged, ok := d.mapping(src)
			if !ok {
				d.errorf(src, "merge key: want a mapping, got %s", d.describe(src))
				continue
			}
			if depth > maxDepth {
				d.errorf(src, "values nested more than %d deep", maxDepth)
				return
			}
			sub := map[string]any{}
			subNodes := map[string]*ast.MappingValueNode{}
			d.mergeEntries(sub, subNodes, merged, depth+1)
			for k, val := range sub {
				if explicit[k] {
					continue
				}
				if _, set := out[k]; set {
					continue // earlier merge sources win
				}
				out[k] = val
				if nodes != nil {
					nodes[k] = subNodes[k]
				}
			}
		}
	}
}

// value converts a variable's value to plain Go values: nil, string, bool,
// int64/uint64, float64, []any and map[string]any.
func (d *decoder) value(n ast.Node, depth int) any {
	v := d.rawValue(n, depth)
	if s, ok := v.(string); ok {
		if r, bad := yamltext.ControlInText(s); bad {
			d.errorf(n, "value %s holds a control character %s", yamltext.Short(s), yamltext.Name(r))
		}
	}
	return v
}

func (d *decoder) rawValue(n ast.Node, depth int) any {
	if depth > maxDepth {
		d.errorf(n, "values nested more than %d deep", maxDepth)
		return nil
	}
	v, tag, ok := d.deref(n)
	if !ok || v == nil {
		return nil
	}
	switch tag {
	case "!!str", "!unsafe", "!vault":
		// Kept as the text written; vault values stay encrypted.
		switch x := v.(type) {
		case *ast.LiteralNode:
			if x.Value != nil {
				return x.Value.Value
			}
			return ""
		case *ast.StringNode:
			return x.Value
		case ast.ScalarNode:
			if tk := x.GetToken(); tk != nil {
				return tk.Value
			}
		}
	}
	switch x := v.(type) {
	case *ast.NullNode:
		return nil
	case *ast.StringNode:
		return x.Value
	case *ast.LiteralNode:
		if x.Value != nil {
			return x.Value.Value
		}
		return ""
	case *ast.MappingNode, *ast.MappingValueNode:
		entries, _ := d.mapping(x)
		m := map[string]any{}
		d.mergeEntries(m, nil, entries, depth)
		return m
	case *ast.SequenceNode:
		s := make([]any, 0, len(x.Values))
		for _, e := range x.Values {
			s = append(s, d.value(e, depth+1))
		}
		return s
	case ast.ScalarNode:
		return x.GetValue()
	}
	d.errorf(v, "unsupported value: %s", d.describe(v))
	return nil
}

func (d *decoder) describe(n ast.Node) string {
	switch x := n.(type) {
	case nil, *ast.NullNode:
		return "null"
	case *ast.AnchorNode:
		return d.describe(x.Value)
	case *ast.TagNode:
		return d.describe(x.Value)
	case *ast.AliasNode:
		return "an alias"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a sequence"
	case *ast.StringNode, *ast.LiteralNode:
		return fmt.Sprintf("the string %q", truncate(fmt.Sprint(x.(ast.ScalarNode).GetValue()), 40))
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return "a " + strings.ToLower(n.Type().String())
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}

// nodePos is the line and column of a node (a block mapping's: of its first key).
func nodePos(n ast.Node) yamlpos.Pos {
	switch x := n.(type) {
	case nil:
		return yamlpos.Pos{}
	case *ast.MappingNode:
		if x == nil {
			return yamlpos.Pos{}
		}
		if !x.IsFlowStyle && len(x.Values) > 0 && x.Values[0] != nil {
			return nodePos(x.Values[0])
		}
	case *ast.MappingValueNode:
		if x == nil {
			return yamlpos.Pos{}
		}
		if x.Key != nil {
			return nodePos(x.Key)
		}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return yamlpos.Pos{}
	}
	return yamlpos.Pos{Line: tk.Position.Line, Col: tk.Position.Column}
}

// checkCycles reports every cycle of children, at the entry that closes it.
func (d *decoder) checkCycles() {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = active
		stack = append(stack, name)
		g := d.inv.groups[name]
		for _, c := range slices.Sorted(maps.Keys(g.children)) {
			switch state[c] {
			case active:
				i := slices.Index(stack, c)
				cycle := append(slices.Clone(stack[i:]), c)
				d.errorAt(g.children[c], "group cycle: %s", strings.Join(cycle, " -> "))
			case unvisited:
				visit(c)
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, name := range slices.Sorted(maps.Keys(d.inv.groups)) {
		if state[name] == unvisited {
			visit(name)
		}
	}
}

// resolveAddresses makes every group without a parent a child of all,
// computes group depths and sets each host's address.
func (d *decoder) resolveAddresses() {
	inv := d.inv
	for name, g := range inv.groups {
		if name != GroupAll && len(g.parents) == 0 {
			g.parents[GroupAll] = true
			inv.groups[GroupAll].children[name] = yamlpos.Pos{}
		}
	}
	depth := map[string]int{GroupAll: 0}
	var depthOf func(string) int
	depthOf = func(name string) int {
		if v, ok := depth[name]; ok {
			return v
		}
		dd := 0
		for p := range inv.groups[name].parents {
			dd = max(dd, depthOf(p)+1)
		}
		depth[name] = dd
		return dd
	}
	for name, g := range inv.groups {
		g.depth = depthOf(name)
	}
	for _, h := range inv.hosts {
		if s, ok := h.vars[ansibleHost].(string); ok {
			h.address = s
			continue
		}
		// Ancestors of the host's groups, in Ansible's order of
		// precedence: shallow before deep, then by
		// ansible_group_priority, then by name; the last wins.
		anc := map[string]bool{GroupAll: true}
		queue := slices.Collect(maps.Keys(h.groups))
		for len(queue) > 0 {
			name := queue[0]
			queue = queue[1:]
			if anc[name] && name != GroupAll {
				continue
			}
			anc[name] = true
			for p := range inv.groups[name].parents {
				queue = append(queue, p)
			}
		}
		groups := slices.Collect(maps.Keys(anc))
		slices.SortFunc(groups, func(a, b string) int {
			ga, gb := inv.groups[a], inv.groups[b]
			if ga.depth != gb.depth {
				return ga.depth - gb.depth
			}
			if ga.priority != gb.priority {
				return cmp.Compare(ga.priority, gb.priority)
			}
			return strings.Compare(a, b)
		})
		for _, name := range groups {
			if a := inv.groups[name].ansibleHost; a != "" {
				h.address = a
			}
		}
	}
}
