package intent

import (
	"strings"
)

// merge returns over merged onto base: maps merge deeply (keys of over win,
// new keys are appended), anything else in over replaces base. Neither
// input is modified; untouched subtrees are shared.
func merge(base, over *node) *node {
	switch {
	case over == nil:
		return base
	case base == nil:
		return over
	case base.kind != kindMap || over.kind != kindMap:
		return over
	}
	out := &node{kind: kindMap, pos: over.pos, keys: make([]*node, 0, len(base.keys)+len(over.keys)), vals: make([]*node, 0, len(base.keys)+len(over.keys))}
	out.keys = append(out.keys, base.keys...)
	out.vals = append(out.vals, base.vals...)
	for i, k := range over.keys {
		j := -1
		for bi, bk := range base.keys {
			if bk.value == k.value {
				j = bi
				break
			}
		}
		if j < 0 {
			out.keys = append(out.keys, k)
			out.vals = append(out.vals, over.vals[i])
			continue
		}
		out.keys[j] = k
		out.vals[j] = merge(base.vals[j], over.vals[i])
	}
	return out
}

// lookup returns the key node of a dotted path in n, or nil if n does not
// set it.
func lookup(n *node, p string) *node {
	var key *node
	for seg := range strings.SplitSeq(p, ".") {
		if n == nil || n.kind != kindMap {
			return nil
		}
		key = n.keyNode(seg)
		if key == nil {
			return nil
		}
		n = n.get(seg)
	}
	return key
}

// overrides returns the key node by which tree overrides the dotted path p
// when merged over a tree that sets it: the path itself (or anything inside
// it, which lies below), or an enclosing key set to null (which resets the
// whole subtree). Other values of the wrong type are decoding errors. nil if
// tree leaves p alone.
func overrides(tree *node, p string) *node {
	segs := strings.Split(p, ".")
	n := tree
	for i, seg := range segs {
		if n == nil || n.kind != kindMap {
			return nil
		}
		k := n.keyNode(seg)
		if k == nil {
			return nil
		}
		n = n.get(seg)
		if i < len(segs)-1 && n.kind == kindNull {
			return k // a null resets the whole subtree
		}
		if i == len(segs)-1 {
			return k
		}
	}
	return nil
}

// checkLocks reports to errs the fields of tree (a service or a nested
// defaults tree) that df locks.
func checkLocks(df *Defaults, tree *node, errs *errList) {
	for _, lk := range df.Lock {
		if k := overrides(tree, lk.Path); k != nil {
			errs.Add(k.pos, "%s is locked by %s", lk.Path, lk.Pos)
		}
	}
}

// checkDefaultsLocks checks a defaults file against the locks of the
// defaults above it.
func (l *loader) checkDefaultsLocks(df *Defaults) {
	if df.tree == nil {
		return
	}
	for up := df.parent; up != nil; up = up.parent {
		checkLocks(up, df.tree, l.errs)
	}
}

// checkPolicyNarrows checks that a nested policy's VIP prefixes lie inside
// the prefixes its enclosing policies allow: a subtree can only narrow.
func (l *loader) checkPolicyNarrows(df *Defaults) {
	for i, p := range df.Policy.VIPPrefixes {
		pos := df.vipPolicyPos
		if i < len(df.vipPrefixPos) {
			pos = df.vipPrefixPos[i]
		}
		for up := df.parent; up != nil; up = up.parent {
			if len(up.Policy.VIPPrefixes) == 0 {
				continue
			}
			inside := false
			for _, q := range up.Policy.VIPPrefixes {
				if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
					inside = true
					break
				}
			}
			if !inside {
				l.errs.Add(pos, "policy.vip_prefixes: %s is not inside the prefixes allowed by %s", p.Prefix, up.vipPolicyPos)
			}
		}
	}
}
