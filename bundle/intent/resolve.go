package intent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lbctl/lbctl/bundle/dns"
	"github.com/lbctl/lbctl/bundle/inventory"
	"github.com/lbctl/lbctl/bundle/model"
)

// Inventory is what resolving needs of an inventory; *inventory.Inventory
// implements it.
type Inventory interface {
	Group(name string) ([]inventory.Host, error)
	Host(name string) (inventory.Host, bool)
}

// errSkip marks lookups that fail because a source (inventory, zone) did not
// load; its own error is reported once, these are not.
var errSkip = errors.New("source did not load")

// brokenSource stands for an inventory or a zone that did not load; it
// counts what it was asked, for the one report of the source's problem.
type brokenSource struct {
	mu    sync.Mutex
	asked map[string]bool
}

func (b *brokenSource) note(what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.asked == nil {
		b.asked = map[string]bool{}
	}
	b.asked[what] = true
}

// askedFor lists what it was asked, sorted.
func (b *brokenSource) askedFor() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.asked))
	for k := range b.asked {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (b *brokenSource) Group(name string) ([]inventory.Host, error) {
	b.note(name)
	return nil, errSkip
}

func (b *brokenSource) Host(name string) (inventory.Host, bool) {
	b.note(name)
	return inventory.Host{}, false
}

func (b *brokenSource) Lookup(_ context.Context, name string) ([]netip.Addr, error) {
	b.note(name)
	return nil, errSkip
}

// lookupWorkers bounds concurrent DNS lookups.
const lookupWorkers = 16

// Resolve turns the tree into the resolved model: names are looked up with
// r (wrap it in dns.NewCache to look each name up once; Resolve asks for
// each distinct name once anyway), backend groups come from inv (which may
// be nil when no service names a group or an inventory host), inference
// fills in everything left implicit, and the cross-service checks run. All
// problems are returned at once as Errors.
func (t *Tree) Resolve(ctx context.Context, r dns.Resolver, inv Inventory) (*model.Site, error) {
	rs := &resolver{tree: t, dns: r, inv: inv, errs: &errList{}, groups: map[string]groupResult{}, hosts: map[string]hostResult{}, shared: map[string]*sharedErr{}}
	site := rs.resolve(ctx)
	if err := rs.errs.Err(); err != nil {
		return nil, err
	}
	if rs.skipped {
		// A source did not load; whoever gave it reports why.
		return nil, fmt.Errorf("resolve: %w: the inventory, the zone or the DNS server", errSkip)
	}
	// The grammar of the resolved model (what a node checks again when
	// it decodes the bundle): whatever the checks above let through is
	// refused here, at the service's or node profile's file.
	if err := site.Validate(); err != nil {
		rs.grammarErrors(site, err)
		return nil, rs.errs.Err()
	}
	return site, nil
}

// grammarErrors turns the model.FieldErrors of site.Validate into errors
// positioned at the field in the service file or node profile it came
// from (its nearest ancestor that is set, or the file), with the model's
// JSON path in the message.
func (rs *resolver) grammarErrors(site *model.Site, err error) {
	services := map[string]*Service{}
	for _, s := range rs.tree.Services {
		services[s.Name] = s
	}
	nodes := map[string]*NodeProfile{}
	for _, np := range rs.tree.Nodes {
		nodes[np.Hostname] = np
	}
	var fes []*model.FieldError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if fe, ok := e.(*model.FieldError); ok {
				fes = append(fes, fe)
			}
		}
	}
	if len(fes) == 0 {
		rs.errs.Add(Pos{File: rs.display(SiteFileName)}, "resolved model: %v", err)
		return
	}
	for _, fe := range fes {
		pos := Pos{File: rs.display(SiteFileName)}
		top, i, rest := splitFieldPath(fe.Path)
		switch {
		case top == "services" && i < len(site.Services):
			if s := services[site.Services[i].Name]; s != nil {
				pos = s.at(rest)
				if pos.File == "" {
					pos.File = rs.display(s.Source)
				}
			}
		case top == "nodes" && i < len(site.Nodes):
			if np := nodes[site.Nodes[i].Hostname]; np != nil {
				pos = (&Service{src: np.src}).at(rest)
				if pos.File == "" {
					pos.File = rs.display(np.Source)
				}
			}
		}
		rs.errs.AddErr(&Error{Pos: pos, Msg: fe.Error(), Err: fe})
	}
}

// splitFieldPath splits "services[3].backend.check.method" into
// "services", 3 and the dotted path of the intents ("backend.check.method").
// The model sorts its lists, so an index inside the service is no index
// of the intents: the path stops before it ("redirects[1].to" gives
// "redirects"). Paths without an index give -1.
func splitFieldPath(p string) (top string, i int, rest string) {
	top, after, ok := strings.Cut(p, "[")
	if !ok {
		return p, -1, ""
	}
	n, after, _ := strings.Cut(after, "]")
	i, err := strconv.Atoi(n)
	if err != nil {
		return top, -1, ""
	}
	rest, _, _ = strings.Cut(strings.TrimPrefix(after, "."), "[")
	return top, i, rest
}

type groupResult struct {
	hosts []inventory.Host
	err   error
}

type hostResult struct {
	host inventory.Host
	ok   bool
}

type lookupResult struct {
	addrs []netip.Addr
	err   error
}

type resolver struct {
	tree   *Tree
	dns    dns.Resolver
	inv    Inventory
	errs   *errList
	groups map[string]groupResult
	// hosts are the inventory hosts named in backend.hosts (found or not).
	hosts   map[string]hostResult
	lookups map[string]lookupResult
	// shared errors, see flush.
	shared      map[string]*sharedErr
	sharedOrder []string
	// skipped is set when a service's error was left out because a
	// source did not load (errSkip): the site is incomplete.
	skipped bool
}

func (rs *resolver) display(rel string) string {
	if rs.tree.Root == "" {
		return rel
	}
	return filepath.Join(rs.tree.Root, filepath.FromSlash(rel))
}

// serviceErrs collects a service's errors.
type serviceErrs struct {
	errList
	file, name string
}

// sharedErr is an error positioned outside the service it concerns (in a
// defaults file), with every service it concerns.
type sharedErr struct {
	err   *Error
	names []string
}

// flush moves a service's errors to the resolver. Errors positioned in
// another file (a defaults file) name the service; the same error for
// several services is reported once, naming them all.
func (rs *resolver) flush(se *serviceErrs) {
	for _, e := range se.All() {
		if errors.Is(e.Err, errSkip) {
			rs.skipped = true
			continue
		}
		if e.Pos.File == se.file {
			rs.errs.AddErr(e)
			continue
		}
		key := e.Pos.String() + "\x00" + e.Msg
		sh, ok := rs.shared[key]
		if !ok {
			sh = &sharedErr{err: e}
			rs.shared[key] = sh
			rs.sharedOrder = append(rs.sharedOrder, key)
		}
		sh.names = append(sh.names, se.name)
	}
}

// flushShared adds the shared errors with the services they concern.
func (rs *resolver) flushShared() {
	for _, key := range rs.sharedOrder {
		sh := rs.shared[key]
		e := *sh.err
		switch n := len(sh.names); {
		case n == 1:
			e.Msg += " (service " + sh.names[0] + ")"
		case n <= 3:
			e.Msg += " (services " + strings.Join(sh.names, ", ") + ")"
		default:
			e.Msg += fmt.Sprintf(" (services %s and %d more)", strings.Join(sh.names[:2], ", "), n-2)
		}
		rs.errs.AddErr(&e)
	}
}

// group looks a backend group up in the inventory once. Only the first pass
// over the services (backendNames) adds to the cache; the parallel pass
// finds every group there.
func (rs *resolver) group(name string) groupResult {
	if g, ok := rs.groups[name]; ok {
		return g
	}
	var g groupResult
	if rs.inv == nil {
		g.err = fmt.Errorf("%w %q: the site has no inventory (set inventory in %s)", inventory.ErrUnknownGroup, name, SiteFileName)
	} else {
		g.hosts, g.err = rs.inv.Group(name)
	}
	rs.groups[name] = g
	return g
}

// host looks an inventory host up once; like group, only backendNames adds
// to the cache.
func (rs *resolver) host(name string) (inventory.Host, bool) {
	h, ok := rs.hosts[name]
	if !ok {
		h.host, h.ok = rs.inv.Host(name)
		rs.hosts[name] = h
	}
	return h.host, h.ok
}

// backendNames lists the names the service's backend needs looked up.
func (rs *resolver) backendNames(s *Service, names map[string]bool) {
	if s.Backend.Group != "" {
		for _, h := range rs.group(s.Backend.Group).hosts {
			if h.Address == "" {
				names[canonicalName(h.Name)] = true
			} else if _, err := netip.ParseAddr(h.Address); err != nil {
				names[canonicalName(h.Address)] = true
			}
		}
	}
	for _, h := range s.Backend.Hosts {
		if _, err := netip.ParseAddr(h); err == nil {
			continue
		}
		if rs.inv != nil {
			if ih, ok := rs.host(h); ok {
				if ih.Address == "" {
					names[canonicalName(ih.Name)] = true
				} else if _, err := netip.ParseAddr(ih.Address); err != nil {
					names[canonicalName(ih.Address)] = true
				}
				continue
			}
		}
		names[canonicalName(h)] = true
	}
}

// lookupAll looks the names up concurrently, each once. A DNS server that
// does not answer is one problem, reported once (unreachable).
func (rs *resolver) lookupAll(ctx context.Context, names map[string]bool) {
	rs.lookups = make(map[string]lookupResult, len(names))
	if rs.dns == nil {
		if len(names) > 0 {
			list := slices.Sorted(maps.Keys(names))
			rs.errs.Add(Pos{File: rs.display(SiteFileName), Line: 1, Col: 1}, "no zone or DNS server: set zone or dns in %s: %d names not looked up: %s", SiteFileName, len(list), nameList(list, 3))
		}
		for n := range names {
			rs.lookups[n] = lookupResult{err: errSkip}
		}
		return
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	slices.Sort(list)
	results := make([]lookupResult, len(list))
	next := make(chan int, len(list))
	for i := range list {
		next <- i
	}
	close(next)
	// After a few lookups the server did not answer and none it did, the
	// rest are not asked: each would wait for its own timeout.
	var down, answered atomic.Int64
	var wg sync.WaitGroup
	for range min(lookupWorkers, len(list)) {
		wg.Go(func() {
			for i := range next {
				if down.Load() >= unreachableAfter && answered.Load() == 0 {
					results[i] = lookupResult{err: errNotAsked}
					continue
				}
				results[i] = rs.lookup(ctx, list[i])
				if errors.Is(results[i].err, dns.ErrUnreachable) {
					down.Add(1)
				} else {
					answered.Add(1)
				}
			}
		})
	}
	wg.Wait()
	rs.unreachable(list, results)
	for i, n := range list {
		rs.lookups[n] = results[i]
	}
}

// unreachableAfter is how many lookups the DNS server must leave without
// an answer, and answer none, before the others are not asked.
const unreachableAfter = 4

// errNotAsked marks a name not looked up because the DNS server did not
// answer the lookups before it.
var errNotAsked = fmt.Errorf("not asked: %w", dns.ErrUnreachable)

// lookup looks one name up, its addresses unmapped, sorted and distinct.
func (rs *resolver) lookup(ctx context.Context, name string) lookupResult {
	a, err := rs.dns.Lookup(ctx, name)
	if err == nil && len(a) == 0 {
		err = fmt.Errorf("%s: no addresses: %w", name, dns.ErrNotFound)
	}
	a = slices.Clone(a) // the resolver's slice may be shared (cache)
	for j := range a {
		a[j] = a[j].Unmap()
	}
	slices.SortFunc(a, netip.Addr.Compare)
	return lookupResult{addrs: slices.Compact(a), err: err}
}

// unreachable reports the lookups that failed because the DNS server did
// not answer as one problem, at the line of site.yaml that names the
// server, with how many lookups it failed and which; their own errors are
// left out (errSkip).
func (rs *resolver) unreachable(list []string, results []lookupResult) {
	var failed []string
	var first *dns.UnreachableError
	for i, r := range results {
		if !errors.Is(r.err, dns.ErrUnreachable) {
			continue
		}
		failed = append(failed, list[i])
		if first == nil {
			errors.As(r.err, &first)
		}
		results[i].err = errSkip
	}
	if len(failed) == 0 {
		return
	}
	server, cause := "", "no answer"
	if first != nil {
		server, cause = first.Server, first.Cause()
	}
	pos := Pos{File: rs.display(SiteFileName)}
	if d := rs.tree.Site.DNS; d != "" && (server == "" || dns.ServerAddr(d) == server) {
		pos = rs.tree.siteSrc.keyPos("dns", pos.File)
	} else if server != "" {
		server += " (--dns)"
	}
	rs.errs.Add(pos, "DNS server %s unreachable (%s): %d of %d lookups failed: %s", server, cause, len(failed), len(list), nameList(failed, 3))
}

// nameList is "a, b, c and 5 more".
func nameList(names []string, show int) string {
	if len(names) <= show+1 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}

func (rs *resolver) resolve(ctx context.Context) *model.Site {
	t := rs.tree
	names := map[string]bool{}
	for _, s := range t.Services {
		if s.broken {
			continue
		}
		if f := canonicalName(s.FQDN); validHostname(f) {
			names[f] = true
		}
		for _, a := range s.Aliases {
			if a := canonicalName(a); validHostname(a) {
				names[a] = true
			}
		}
		rs.backendNames(s, names)
	}
	rs.lookupAll(ctx, names)

	site := &model.Site{FormatVersion: model.FormatVersion, Name: t.Site.Site, VIPs: []model.VIP{}, Nodes: []model.Node{},
		Monitoring: prefixList(t.Site.Monitoring.Hosts)}
	// Each service is resolved on its own, in parallel: the groups, hosts
	// and names it needs are all looked up by now, and its errors are its
	// own until they are flushed in the order of the services.
	var live []*Service
	for _, s := range t.Services {
		if !s.broken {
			live = append(live, s)
		}
	}
	resolved := make([]model.Service, len(live))
	errs := make([]serviceErrs, len(live))
	parallel(len(live), func(i int) {
		s, se := live[i], &errs[i]
		se.file, se.name = rs.display(s.Source), s.Name
		addrs := rs.vipAddresses(s, se)
		rs.checkAliases(s, addrs, se)
		servers := rs.servers(s, se)
		resolved[i] = infer(s, addrs, servers, &se.errList)
		if len(s.Allow) > 0 && len(t.Site.Monitoring.Hosts) > 0 {
			resolved[i].AllowedSources = prefixList(admitMonitoring(s.Allow, t.Site.Monitoring.Hosts))
		}
		rs.checkPolicy(s, addrs, se)
	})
	for i := range live {
		rs.flush(&errs[i])
	}
	site.Services = resolved
	rs.flushShared()
	slices.SortFunc(site.Services, func(a, b model.Service) int { return strings.Compare(a.Name, b.Name) })
	site.VIPs = rs.crossCheck(site.Services)
	site.Nodes = rs.nodes()
	if slices.ContainsFunc(site.VIPs, func(v model.VIP) bool { return v.BGP.Primary != "" }) {
		for i := range site.Nodes {
			nodeBackup(&site.Nodes[i], rs.tree.Nodes[i])
		}
	}
	return site
}

// admitMonitoring adds to a client allow list the monitoring prefixes it
// does not cover already: the Icinga 2 checks of the VIP come from them.
func admitMonitoring(allow, mon []Prefix) []Prefix {
	out := slices.Clone(allow)
	for _, m := range mon {
		if !slices.ContainsFunc(allow, func(a Prefix) bool { return a.Bits() <= m.Bits() && a.Contains(m.Addr()) }) {
			out = append(out, m)
		}
	}
	return out
}

// parallel calls f(i) for i in [0, n) on GOMAXPROCS goroutines.
func parallel(n int, f func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(1, n/64)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

func (rs *resolver) vipAddresses(s *Service, errs *serviceErrs) []netip.Addr {
	if !validHostname(canonicalName(s.FQDN)) {
		return nil // infer reports it
	}
	res := rs.lookups[canonicalName(s.FQDN)]
	if res.err != nil {
		errs.Wrap(s.at("fqdn"), res.err, "fqdn %s does not resolve", canonicalName(s.FQDN))
		return nil
	}
	return res.addrs
}

// checkAliases checks that every alias resolves, and only to addresses of
// the service's VIP: an alias pointing elsewhere is routed by nothing.
// Invalid names and repeats are infer's to report.
func (rs *resolver) checkAliases(s *Service, addrs []netip.Addr, errs *serviceErrs) {
	fqdn := canonicalName(s.FQDN)
	for i, a := range s.Aliases {
		name := canonicalName(a)
		if !validHostname(name) || name == fqdn {
			continue
		}
		p := s.at(fmt.Sprintf("aliases.%d", i))
		res := rs.lookups[name]
		if res.err != nil {
			errs.Wrap(p, res.err, "alias %s does not resolve", name)
			continue
		}
		if len(addrs) == 0 {
			continue // the fqdn's own error says enough
		}
		var stray []string
		for _, x := range res.addrs {
			if _, found := slices.BinarySearchFunc(addrs, x, netip.Addr.Compare); !found {
				stray = append(stray, x.String())
			}
		}
		if len(stray) > 0 {
			errs.Add(p, "alias %s resolves to %s, not an address of %s (the VIP): clients using the alias would not reach the load balancer", name, strings.Join(stray, " "), fqdn)
		}
	}
}

// servers resolves the backend servers, sorted by name.
func (rs *resolver) servers(s *Service, errs *serviceErrs) []model.Server {
	b := s.Backend
	var out []model.Server
	addr := func(p Pos, name, host, via string) {
		if a, err := netip.ParseAddr(host); err == nil {
			out = append(out, model.Server{Name: name, Address: a.Unmap()})
			return
		}
		res := rs.lookups[canonicalName(host)]
		if res.err != nil {
			errs.Wrap(p, res.err, "backend server %s%s does not resolve", name, via)
			return
		}
		out = append(out, model.Server{Name: name, Address: res.addrs[0]})
	}
	switch {
	case b.Group != "" && len(b.Hosts) > 0:
		errs.Add(s.at("backend.hosts"), "backend: set group or hosts, not both (group %s is set at %s)", b.Group, s.at("backend.group"))
		return nil
	case b.Group != "":
		g := rs.group(b.Group)
		if g.err != nil {
			errs.Wrap(s.at("backend.group"), g.err, "backend.group")
			return nil
		}
		if len(g.hosts) == 0 {
			errs.Add(s.at("backend.group"), "backend.group %s has no hosts", b.Group)
		}
		for _, h := range g.hosts {
			host := h.Address
			if host == "" {
				host = h.Name
			}
			addr(s.at("backend.group"), h.Name, host, " (group "+b.Group+")")
		}
	case len(b.Hosts) > 0:
		for i, h := range b.Hosts {
			p := s.at(fmt.Sprintf("backend.hosts.%d", i))
			if a, err := netip.ParseAddr(h); err == nil {
				addr(p, a.Unmap().String(), h, "")
				continue
			}
			if rs.inv != nil {
				if ih, ok := rs.host(h); ok {
					host := ih.Address
					if host == "" {
						host = ih.Name
					}
					addr(p, ih.Name, host, " (inventory host)")
					continue
				}
			}
			if !validHostname(canonicalName(h)) {
				errs.Add(p, "backend host %s is neither an inventory host, an address nor a DNS name", short(h))
				continue
			}
			addr(p, canonicalName(h), h, "")
		}
	default:
		errs.Add(s.ownAt("backend"), "backend needs a group or hosts")
		return nil
	}
	slices.SortFunc(out, func(a, b model.Server) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			errs.Add(s.at("backend"), "backend server %s listed twice", out[i].Name)
		}
	}
	return slices.CompactFunc(out, func(a, b model.Server) bool { return a.Name == b.Name })
}

// checkPolicy checks the service against the policy of every defaults file
// above it: all of them must allow it, so nested policies narrow.
func (rs *resolver) checkPolicy(s *Service, addrs []netip.Addr, errs *serviceErrs) {
	for _, df := range s.chain {
		if ps := df.Policy.VIPPrefixes; len(ps) > 0 {
			for _, a := range addrs {
				if !slices.ContainsFunc(ps, func(p Prefix) bool { return p.Contains(a) }) {
					errs.Add(s.at("fqdn"), "VIP address %s of %s is outside the prefixes allowed by %s", a, canonicalName(s.FQDN), df.vipPolicyPos)
				}
			}
		}
		if gs := df.Policy.BackendGroups; len(gs) > 0 {
			if g := s.Backend.Group; g != "" && !slices.ContainsFunc(gs, func(glob string) bool {
				ok, _ := path.Match(glob, g)
				return ok
			}) {
				errs.Add(s.at("backend.group"), "backend group %s is not allowed by the policy in %s (allowed: %s)", g, df.groupPolicyPos, strings.Join(gs, ", "))
			}
			if len(s.Backend.Hosts) > 0 {
				errs.Add(s.at("backend.hosts"), "backend.hosts is not allowed by the policy in %s: use a backend group (allowed: %s)", df.groupPolicyPos, strings.Join(gs, ", "))
			}
		}
		if gs := df.Policy.Communities; len(gs) > 0 {
			checkCommunityPolicy(s, df, errs)
		}
	}
}

// checkCommunityPolicy checks the service's communities and large
// communities against the globs of df's policy.communities.
func checkCommunityPolicy(s *Service, df *Defaults, errs *serviceErrs) {
	gs := df.Policy.Communities
	// A glob with one colon is for standard communities, one with two
	// for large ones: "65000:2*" does not admit 65000:2:7.
	allowed := func(text string) bool {
		return slices.ContainsFunc(gs, func(glob string) bool {
			ok, _ := path.Match(glob, text)
			return ok && strings.Count(glob, ":") == strings.Count(text, ":")
		})
	}
	for i, c := range s.BGP.Communities {
		if !allowed(c.String()) {
			errs.Add(s.at(fmt.Sprintf("bgp.communities.%d", i)), "community %s is not allowed by the policy in %s (allowed: %s)", c, df.communityPolicyPos, strings.Join(gs, ", "))
		}
	}
	for i, c := range s.BGP.LargeCommunities {
		if !allowed(c.String()) {
			errs.Add(s.at(fmt.Sprintf("bgp.large_communities.%d", i)), "large community %s is not allowed by the policy in %s (allowed: %s)", c, df.communityPolicyPos, strings.Join(gs, ", "))
		}
	}
}
