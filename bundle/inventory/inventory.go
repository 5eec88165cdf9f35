package inventory

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/lbctl/lbctl/bundle/internal/yamlpos"
	"github.com/lbctl/lbctl/bundle/internal/yamltext"
)

// Names of the groups every inventory has.
const (
	// GroupAll holds every host.
	GroupAll = "all"
	// GroupUngrouped holds the hosts that belong to no group but "all".
	GroupUngrouped = "ungrouped"
)

// ErrUnknownGroup is wrapped by Group when the inventory has no such group.
var ErrUnknownGroup = errors.New("unknown inventory group")

// Host is one inventory host.
type Host struct {
	// Name is the inventory host name (after range expansion).
	Name string
	// Address is ansible_host, from the host's own variables or inherited
	// from its groups; "" when not set, in which case the host is reached
	// by Name.
	Address string
	// Vars are the host's own variables (not the inherited group
	// variables), including ansible_host when set on the host. When a host
	// is listed several times, later definitions override earlier keys.
	Vars map[string]any
	// Source is "path:line:col" of the host's first definition, for error
	// messages that point an operator at the inventory.
	Source string
}

// Inventory is a parsed inventory. It is immutable after Parse and safe for
// concurrent use.
type Inventory struct {
	path   string
	groups map[string]*group
	hosts  map[string]*host
}

type group struct {
	name string
	// hosts listed directly under this group.
	hosts map[string]bool
	// children and where each was first named (for cycle errors).
	children map[string]yamlpos.Pos
	parents  map[string]bool
	// ansibleHost is the group's ansible_host variable, "" when unset.
	ansibleHost string
	priority    int64
	depth       int
}

type host struct {
	name    string
	vars    map[string]any
	source  string
	groups  map[string]bool // groups listing the host directly
	address string
}

// Load reads and parses the inventory file at path.
func Load(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	data, err := yamltext.ReadAll(f, nil, Limits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(path, data)
}

// Path is the file name the inventory was parsed from.
func (inv *Inventory) Path() string { return inv.path }

// Groups returns the names of all groups, sorted; "all" and "ungrouped"
// are always there.
func (inv *Inventory) Groups() []string {
	return slices.Sorted(maps.Keys(inv.groups))
}

// Host returns the named host.
func (inv *Inventory) Host(name string) (Host, bool) {
	h, ok := inv.hosts[name]
	if !ok {
		return Host{}, false
	}
	return h.export(), true
}

// Hosts returns every host, sorted by Name.
func (inv *Inventory) Hosts() []Host {
	hs, _ := inv.Group(GroupAll)
	return hs
}

// Group returns the hosts of the named group and of all its descendant
// groups, sorted by Name, each once. An unknown name gives an error wrapping
// ErrUnknownGroup, with a suggestion when a group of a similar name exists.
func (inv *Inventory) Group(name string) ([]Host, error) {
	if _, ok := inv.groups[name]; !ok {
		return nil, inv.unknownGroup(name)
	}
	var names []string
	switch name {
	case GroupAll:
		names = slices.Collect(maps.Keys(inv.hosts))
	case GroupUngrouped:
		for n, h := range inv.hosts {
			if h.ungrouped() {
				names = append(names, n)
			}
		}
	default:
		seen := map[string]bool{}
		members := map[string]bool{}
		inv.collect(name, seen, members)
		names = slices.Collect(maps.Keys(members))
	}
	slices.Sort(names)
	out := make([]Host, 0, len(names))
	for _, n := range names {
		out = append(out, inv.hosts[n].export())
	}
	return out, nil
}

func (inv *Inventory) collect(name string, seen, members map[string]bool) {
	if seen[name] {
		return
	}
	seen[name] = true
	g := inv.groups[name]
	for h := range g.hosts {
		members[h] = true
	}
	for c := range g.children {
		inv.collect(c, seen, members)
	}
}

func (inv *Inventory) unknownGroup(name string) error {
	where := ""
	if inv.path != "" {
		where = " in " + inv.path
	}
	if s := yamlpos.Suggest(name, inv.Groups()); s != "" {
		return fmt.Errorf("%w %q%s (did you mean %q?)", ErrUnknownGroup, name, where, s)
	}
	if _, ok := inv.hosts[name]; ok {
		return fmt.Errorf("%w %q%s (%q is a host, not a group)", ErrUnknownGroup, name, where, name)
	}
	return fmt.Errorf("%w %q%s", ErrUnknownGroup, name, where)
}

// ungrouped reports whether the host is in no group but all and ungrouped.
func (h *host) ungrouped() bool {
	for g := range h.groups {
		if g != GroupAll && g != GroupUngrouped {
			return false
		}
	}
	return true
}

func (h *host) export() Host {
	return Host{Name: h.name, Address: h.address, Vars: maps.Clone(h.vars), Source: h.source}
}
