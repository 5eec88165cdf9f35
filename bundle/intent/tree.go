package intent

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/lbctl/lbctl/bundle/internal/yamlpos"
	"github.com/lbctl/lbctl/bundle/internal/yamltext"
)

// File names with a meaning in an intents tree.
const (
	SiteFileName     = "site.yaml"
	DefaultsFileName = "defaults.yaml"
	defaultNodesDir  = "nodes"
)

// Tree is a loaded intents tree: every file decoded, defaults merged into
// the services, locks and policies checked. Nothing has been resolved yet:
// no inventory, no DNS.
type Tree struct {
	// Root is the tree's directory as given to Load (used in messages).
	Root string
	Site SiteFile
	// Defaults sorted by Dir.
	Defaults []*Defaults
	// Services sorted by Name, with their defaults merged in.
	Services []*Service
	// Nodes sorted by Hostname.
	Nodes []*NodeProfile

	// siteSrc is site.yaml's node tree, for positions of problems with
	// what it names (the DNS server, the inventory).
	siteSrc *node
}

// Defaults is one loaded defaults.yaml.
type Defaults struct {
	// Dir is the directory in the tree ("." for the root).
	Dir string
	// Source is the file's path in the tree.
	Source string
	// Lock lists the locked field paths with their positions.
	Lock   []Lock
	Policy Policy

	// tree is the expanded "defaults:" node, nil if absent.
	tree *node
	// pos of the policy's keys, for messages naming the policy.
	vipPolicyPos, groupPolicyPos, communityPolicyPos Pos
	vipPrefixPos                                     []Pos
	// broken is set when the file has errors.
	broken bool
	// parent is the nearest enclosing defaults, or nil.
	parent *Defaults
}

// Lock is one locked field path.
type Lock struct {
	Path string
	Pos  Pos
}

// Load reads the intents tree in the directory dir.
func Load(dir string) (*Tree, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	return LoadFS(os.DirFS(dir), dir)
}

// checkDir reports a tree directory that does not exist or is a file.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return Errors{{Pos: Pos{File: dir}, Msg: "intents tree: " + errors.Unwrap(err).Error(), Err: err}}
	}
	if !fi.IsDir() {
		return Errors{{Pos: Pos{File: dir}, Msg: "intents tree: not a directory"}}
	}
	return nil
}

var nameSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// LoadFS reads an intents tree from fsys. root is how the tree's directory is
// shown in error messages and in Tree.Root. All problems of the whole tree
// are returned at once, as Errors.
func LoadFS(fsys fs.FS, root string) (*Tree, error) {
	t, errs := loadPartial(fsys, root, nil)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// loadPartial loads what it can: services whose files (or defaults) have
// errors are marked broken, so that resolving the rest of the tree can
// still report its problems. The tree is nil when site.yaml is unusable.
// onSite, if not nil, is called with the tree as soon as its site file is
// decoded, before the rest is read (Resolve opens the inventory and the zone
// meanwhile); it must only read t.Root and t.Site.
func loadPartial(fsys fs.FS, root string, onSite func(t *Tree)) (*Tree, *errList) {
	l := &loader{fsys: fsys, root: root, errs: &errList{}, onSite: onSite}
	return l.load(), l.errs
}

type loader struct {
	fsys   fs.FS
	root   string
	errs   *errList
	onSite func(*Tree)
}

// display is the path of a tree file as shown to the operator.
func (l *loader) display(rel string) string {
	if l.root == "" {
		return rel
	}
	return filepath.Join(l.root, filepath.FromSlash(rel))
}

// parsed is one parsed and expanded file.
type parsed struct {
	rel  string
	tree *node
	err  *Error
}

// Limits on every file of an intents tree (see docs/intents.md, "Text and limits"):
// checked before the YAML parser sees the file, so that a huge file or an
// alias bomb is refused at once.
var fileLimits = yamltext.Limits{MaxBytes: 1 << 20, MaxAliases: 1000}

// parseFile reads and parses one file. buf, if not nil, is the caller's
// buffer to read into, kept for its next file (the parser copies what it
// keeps).
func (l *loader) parseFile(rel string, t reflect.Type, buf *[]byte) parsed {
	data, err := l.readFile(rel, buf)
	display := l.display(rel)
	if err != nil {
		var p *yamltext.Problem
		if errors.As(err, &p) {
			return parsed{rel: rel, err: &Error{Pos: Pos{File: display}, Msg: p.Msg, Err: err}}
		}
		msg := err.Error()
		if u := errors.Unwrap(err); u != nil {
			msg = u.Error()
		}
		return parsed{rel: rel, err: &Error{Pos: Pos{File: display}, Msg: "read: " + msg, Err: err}}
	}
	data, p := yamltext.Check(data, fileLimits)
	if p != nil {
		return parsed{rel: rel, err: &Error{Pos: Pos{File: display, Line: p.Line, Col: p.Col}, Msg: p.Msg, Err: p}}
	}
	n, perr := parseYAML(display, data)
	if perr != nil {
		return parsed{rel: rel, err: perr}
	}
	return parsed{rel: rel, tree: expand(n, t)}
}

// readFile reads rel into *buf, growing it as needed; with buf nil it
// allocates. It spares os.ReadFile's second fstat and a new buffer per file,
// and reads no more than the size limit.
func (l *loader) readFile(rel string, buf *[]byte) ([]byte, error) {
	f, err := l.fsys.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b []byte
	if buf != nil {
		b = *buf
	}
	b, err = yamltext.ReadAll(f, b, fileLimits)
	if buf != nil {
		*buf = b
	}
	return b, err
}

// parseAll parses files in parallel; results keep the order of rels. then,
// if not nil, is called in the same goroutine with each file parsed without
// error (and its index in rels), to go on working on it in parallel.
func (l *loader) parseAll(rels []string, t reflect.Type, then func(int, parsed)) []parsed {
	out := make([]parsed, len(rels))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(rels)/64))
	var wg sync.WaitGroup
	next := make(chan int, len(rels))
	for i := range rels {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 4096)
			for i := range next {
				out[i] = l.parseFile(rels[i], t, &buf)
				if then != nil && out[i].err == nil {
					then(i, out[i])
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func (l *loader) load() *Tree {
	t := &Tree{Root: l.root}
	site := l.loadSite(t)
	if site == nil {
		return nil
	}
	t.siteSrc = site
	files := l.walk(t, site)
	t.Defaults = l.loadDefaults(files.defaults)
	byDir := l.linkDefaults(t.Defaults)
	t.Services = l.loadServices(files.services, byDir)
	t.Nodes = l.loadNodes(files.nodes)
	return t
}

// loadSite decodes the site file into t.Site; nil if it is missing or
// does not parse.
func (l *loader) loadSite(t *Tree) *node {
	site := l.parseFile(SiteFileName, reflect.TypeFor[SiteFile](), nil)
	if site.err != nil {
		if errors.Is(site.err.Err, fs.ErrNotExist) {
			l.errs.Add(Pos{File: l.display(SiteFileName)}, "missing: the root of an intents tree holds %s", SiteFileName)
		} else {
			l.errs.AddErr(site.err)
		}
		return nil
	}
	d := decoder{errs: l.errs}
	d.decode(site.tree, reflect.ValueOf(&t.Site).Elem(), "", nil)
	checkRequired(site.tree, reflect.TypeFor[SiteFile](), "", Pos{File: l.display(SiteFileName), Line: 1, Col: 1}, l.errs)
	l.checkMonitoring(site.tree, t.Site.Monitoring)
	if l.onSite != nil {
		l.onSite(t)
	}
	return site.tree
}

// treeFiles are the intents files of a tree, by role, sorted.
type treeFiles struct {
	defaults, services, nodes []string
}

// walk finds the defaults, service and node files of the tree; files the
// site file names (inventory, zone) are none of them.
func (l *loader) walk(t *Tree, site *node) treeFiles {
	special := map[string]bool{SiteFileName: true}
	for _, p := range []string{t.Site.Inventory, t.Site.Zone} {
		if p != "" {
			special[path.Clean(p)] = true
		}
	}
	nodesDir := defaultNodesDir
	if t.Site.Nodes != "" {
		nodesDir = path.Clean(strings.TrimSuffix(t.Site.Nodes, "/"))
	}

	var files treeFiles
	haveNodes := false
	err := fs.WalkDir(l.fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			l.errs.Add(Pos{File: l.display(p)}, "read: %v", errors.Unwrap(err))
			return nil
		}
		name := e.Name()
		switch {
		case p != "." && strings.HasPrefix(name, "."):
			if e.IsDir() {
				return fs.SkipDir
			}
		case special[p]:
		case e.Type()&fs.ModeSymlink != 0:
			if l.refuseSymlink(p) && p == nodesDir {
				haveNodes = true
			}
		case e.IsDir() && p == nodesDir:
			haveNodes = true
			files.nodes = l.nodeFiles(p)
			return fs.SkipDir
		case e.IsDir():
		case l.refuseExtension(p):
		case !strings.HasSuffix(name, ".yaml"):
			// Not an intents file (README, zone files, ...).
		case name == DefaultsFileName:
			files.defaults = append(files.defaults, p)
		default:
			files.services = append(files.services, p)
		}
		return nil
	})
	if err != nil {
		l.errs.Add(Pos{File: l.display(".")}, "read tree: %v", err)
	}
	if t.Site.Nodes != "" && !haveNodes {
		l.errs.Add(site.keyPos("nodes", l.display(SiteFileName)), "nodes directory %s does not exist", short(t.Site.Nodes))
	}
	slices.Sort(files.defaults)
	slices.Sort(files.services)
	return files
}

// linkDefaults links each defaults file to the one above it and checks
// that it narrows it (locks, policy); it returns the defaults by
// directory.
func (l *loader) linkDefaults(defaults []*Defaults) map[string]*Defaults {
	byDir := map[string]*Defaults{}
	for _, df := range defaults {
		byDir[df.Dir] = df
	}
	for _, df := range defaults {
		df.parent = nearestDefaults(byDir, path.Dir(df.Dir), df.Dir == ".")
	}
	for _, df := range defaults {
		before := l.errs.Len()
		l.checkDefaultsLocks(df)
		l.checkPolicyNarrows(df)
		df.broken = df.broken || l.errs.Len() > before
	}
	return byDir
}

// loadServices parses the service files. Each service is merged with its
// defaults and decoded by the worker that parsed it, with errors of its
// own; they are collected in the order of the files.
func (l *loader) loadServices(rels []string, byDir map[string]*Defaults) []*Service {
	type loaded struct {
		s    *Service
		errs errList
	}
	services := make([]loaded, len(rels))
	files := l.parseAll(rels, reflect.TypeFor[Service](), func(i int, f parsed) {
		services[i].s = l.service(f, nearestDefaults(byDir, path.Dir(f.rel), false), &services[i].errs)
	})
	out := make([]*Service, 0, len(files))
	for i, f := range files {
		if f.err != nil {
			l.errs.AddErr(f.err)
			continue
		}
		ld := services[i]
		l.errs.Append(&ld.errs)
		if s := ld.s; s != nil {
			s.broken = !ld.errs.Empty() || slices.ContainsFunc(s.chain, func(d *Defaults) bool { return d.broken })
			out = append(out, s)
		}
	}
	return out
}

// Monitoring prefixes shorter than these would open every checked backend
// port to a large part of the internet: a typo, not a monitoring network.
const (
	minMonitoringBits4 = 8
	minMonitoringBits6 = 16
)

// checkMonitoring checks the site's monitoring hosts.
func (l *loader) checkMonitoring(tree *node, m Monitoring) {
	items := tree.get("monitoring").get("hosts")
	seen := map[Prefix]bool{}
	for i, p := range m.Hosts {
		pos := Pos{File: l.display(SiteFileName)}
		if items != nil && i < len(items.items) {
			pos = items.items[i].pos
		}
		if !p.IsValid() {
			continue // the decoder reported it
		}
		min := minMonitoringBits4
		if p.Addr().Is6() {
			min = minMonitoringBits6
		}
		if p.Bits() < min {
			l.errs.Add(pos, "monitoring.hosts: %s is too wide: a monitoring prefix is at least /%d (it opens the checked backend ports to everyone in it)", p.Prefix, min)
		}
		if seen[p] {
			l.errs.Add(pos, "monitoring.hosts: %s listed twice", p.Prefix)
		}
		seen[p] = true
	}
}

// nearestDefaults returns the defaults of dir or its closest ancestor.
// With none set, dir's own defaults are skipped (for a parent lookup of the
// root).
func nearestDefaults(byDir map[string]*Defaults, dir string, none bool) *Defaults {
	if none {
		return nil
	}
	for {
		if d, ok := byDir[dir]; ok {
			return d
		}
		if dir == "." || dir == "/" || dir == "" {
			return nil
		}
		dir = path.Dir(dir)
	}
}

func (l *loader) nodeFiles(dir string) []string {
	var rels []string
	entries, err := fs.ReadDir(l.fsys, dir)
	if err != nil {
		l.errs.Add(Pos{File: l.display(dir)}, "read: %v", err)
		return nil
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasPrefix(name, "."):
		case e.Type()&fs.ModeSymlink != 0:
			l.refuseSymlink(path.Join(dir, name))
		case e.IsDir():
		case l.refuseExtension(path.Join(dir, name)):
		case strings.HasSuffix(name, ".yaml"):
			rels = append(rels, path.Join(dir, name))
		}
	}
	return rels
}

// yamlExtension reports a name that ends in .yaml or .yml in any case.
func yamlExtension(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// refuseExtension reports (and returns true for) a file that looks like an
// intents file but is not named *.yaml: *.yml or another case would
// otherwise be skipped without a word.
func (l *loader) refuseExtension(rel string) bool {
	ext := path.Ext(rel)
	if !yamlExtension(rel) || ext == ".yaml" {
		return false
	}
	l.errs.Add(Pos{File: l.display(rel)}, "intents files end in .yaml, not %s: rename the file", ext)
	return true
}

// refuseSymlink reports a symlink that stands for an intents file or a
// directory: the loader follows no symlink, so that nothing outside the
// tree is read and nothing in it is skipped silently. Symlinks to other
// files (a README) are left alone. It returns true if it reported.
func (l *loader) refuseSymlink(rel string) bool {
	what := ""
	if fi, err := fs.Stat(l.fsys, rel); err == nil && fi.IsDir() {
		what = "a directory"
	} else if yamlExtension(rel) {
		what = "an intents file"
	} else {
		return false
	}
	msg := "symlink to " + what + ": the intents tree is read without following symlinks; copy or move it into the tree"
	if rl, ok := l.fsys.(fs.ReadLinkFS); ok {
		if target, err := rl.ReadLink(rel); err == nil {
			msg = "symlink to " + what + " (" + yamltext.Short(target) + "): the intents tree is read without following symlinks; copy or move it into the tree"
		}
	}
	l.errs.Add(Pos{File: l.display(rel)}, "%s", msg)
	return true
}

func (l *loader) loadDefaults(rels []string) []*Defaults {
	var out []*Defaults
	for _, f := range l.parseAll(rels, reflect.TypeFor[DefaultsFile](), nil) {
		if f.err != nil {
			// The services below are broken too, but their files are
			// not to blame: they are not checked against what this
			// file would have given them.
			l.errs.AddErr(f.err)
			out = append(out, &Defaults{Dir: path.Dir(f.rel), Source: f.rel, broken: true})
			continue
		}
		before := l.errs.Len()
		var df DefaultsFile
		d := decoder{errs: l.errs}
		d.decode(f.tree, reflect.ValueOf(&df).Elem(), "", nil)
		def := &Defaults{Dir: path.Dir(f.rel), Source: f.rel, Policy: df.Policy}
		def.tree = f.tree.get("defaults")
		if def.tree != nil && def.tree.kind == kindNull {
			def.tree = nil
		}
		display := l.display(f.rel)
		if lock := f.tree.get("lock"); lock != nil && lock.kind == kindSeq {
			for i, it := range lock.items {
				if i < len(df.Lock) && df.Lock[i] != "" {
					def.Lock = append(def.Lock, Lock{Path: df.Lock[i], Pos: it.pos})
					if err := checkFieldPath(df.Lock[i]); err != "" {
						l.errs.Add(it.pos, "lock: %s", err)
					}
				}
			}
		}
		if pol := f.tree.get("policy"); pol != nil {
			def.vipPolicyPos = pol.keyPos("vip_prefixes", display)
			def.groupPolicyPos = pol.keyPos("backend_groups", display)
			def.communityPolicyPos = pol.keyPos("communities", display)
			l.checkGlobs(pol.get("communities"), df.Policy.Communities, "policy.communities")
			if v := pol.get("vip_prefixes"); v != nil && v.kind == kindSeq {
				for _, it := range v.items {
					def.vipPrefixPos = append(def.vipPrefixPos, it.pos)
				}
			}
			if g := pol.get("backend_groups"); g != nil && g.kind == kindSeq {
				for i, it := range g.items {
					if i < len(df.Policy.BackendGroups) {
						if _, err := path.Match(df.Policy.BackendGroups[i], ""); err != nil {
							l.errs.Add(it.pos, "policy.backend_groups: bad glob %s", short(df.Policy.BackendGroups[i]))
						}
					}
				}
			}
		}
		def.broken = l.errs.Len() > before
		out = append(out, def)
	}
	return out
}

// checkGlobs reports the items of list n (decoded into globs) that are
// no valid shell glob.
func (l *loader) checkGlobs(n *node, globs []string, what string) {
	if n == nil || n.kind != kindSeq {
		return
	}
	for i, it := range n.items {
		if i < len(globs) {
			if _, err := path.Match(globs[i], ""); err != nil {
				l.errs.Add(it.pos, "%s: bad glob %s", what, short(globs[i]))
			}
		}
	}
}

// keyPos returns the position of key in map n, or the file's start.
func (n *node) keyPos(key, file string) Pos {
	if k := n.keyNode(key); k != nil {
		return k.pos
	}
	if n != nil {
		return n.pos
	}
	return Pos{File: file, Line: 1, Col: 1}
}

// checkFieldPath checks that p names a service field, such as
// "tls.min_version"; it returns a message, or "".
func checkFieldPath(p string) string {
	t := reflect.TypeFor[Service]()
	for i, seg := range strings.Split(p, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Slice {
			return "cannot lock inside the list " + strings.Join(strings.Split(p, ".")[:i], ".") + ": lock the whole list"
		}
		if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(scalarDecoderType) {
			return "unknown field " + p + ": " + strings.Join(strings.Split(p, ".")[:i], ".") + " has no fields"
		}
		si := infoOf(t)
		fi, ok := si.byName[seg]
		if !ok {
			msg := "unknown field " + p
			if s := yamlpos.Suggest(seg, si.names); s != "" {
				msg += " (did you mean " + strings.Join(append(strings.Split(p, ".")[:i:i], s), ".") + "?)"
			}
			return msg
		}
		t = t.Field(si.fields[fi].index).Type
	}
	return ""
}

// service merges a service file with its defaults and decodes it, adding
// its problems to errs. It may run in parallel with other services.
func (l *loader) service(f parsed, defs *Defaults, errs *errList) *Service {
	display := l.display(f.rel)
	name := strings.TrimSuffix(f.rel, ".yaml")
	for _, seg := range strings.Split(name, "/") {
		if !nameSegment.MatchString(seg) {
			errs.Add(Pos{File: display}, "service name %s: each part must start with a letter or digit and hold only letters, digits, '.', '_' and '-'", short(name))
			return nil
		}
	}
	if f.tree.kind != kindMap && f.tree.kind != kindNull {
		errs.Add(f.tree.pos, "a service file holds a mapping, got %s", f.tree.describe())
		return nil
	}
	// Validate the file on its own (errors point into it) ...
	d := decoder{errs: errs}
	var own Service
	d.decode(f.tree, reflect.ValueOf(&own).Elem(), "", nil)
	// ... then the merged tree; its errors were reported with the file
	// that holds the value, so they are discarded here.
	var chain []*Defaults
	for df := defs; df != nil; df = df.parent {
		chain = append(chain, df)
	}
	slices.Reverse(chain)
	merged := (*node)(nil)
	for _, df := range chain {
		merged = merge(merged, df.tree)
	}
	if f.tree.kind != kindNull {
		// An empty file sets nothing: it keeps what the defaults give.
		merged = merge(merged, f.tree)
	}
	if merged == nil || merged.kind == kindNull {
		merged = &node{kind: kindMap, pos: Pos{File: display, Line: 1, Col: 1}}
	}
	s := &Service{Name: name, Source: f.rel, src: merged, file: display}
	quiet := decoder{errs: &errList{}}
	quiet.decode(merged, reflect.ValueOf(s).Elem(), "", nil)
	if !slices.ContainsFunc(chain, func(d *Defaults) bool { return d.broken && d.tree == nil }) {
		checkRequired(merged, reflect.TypeFor[Service](), "", Pos{File: display, Line: 1, Col: 1}, errs)
	}
	s.chain = chain
	for _, df := range chain {
		checkLocks(df, f.tree, errs)
	}
	return s
}

func (l *loader) loadNodes(rels []string) []*NodeProfile {
	var out []*NodeProfile
	seen := map[string]*NodeProfile{}
	for _, f := range l.parseAll(rels, reflect.TypeFor[NodeProfile](), nil) {
		if f.err != nil {
			l.errs.AddErr(f.err)
			continue
		}
		np := &NodeProfile{Source: f.rel, src: f.tree}
		d := decoder{errs: l.errs}
		d.decode(f.tree, reflect.ValueOf(np).Elem(), "", nil)
		checkRequired(f.tree, reflect.TypeFor[NodeProfile](), "", Pos{File: l.display(f.rel), Line: 1, Col: 1}, l.errs)
		if np.Hostname == "" {
			np.Hostname = strings.TrimSuffix(path.Base(f.rel), ".yaml")
		}
		if prev, ok := seen[np.Hostname]; ok {
			l.errs.Add(f.tree.keyPos("hostname", l.display(f.rel)), "node %s is also defined in %s", np.Hostname, l.display(prev.Source))
			continue
		}
		seen[np.Hostname] = np
		out = append(out, np)
	}
	slices.SortFunc(out, func(a, b *NodeProfile) int { return strings.Compare(a.Hostname, b.Hostname) })
	return out
}
