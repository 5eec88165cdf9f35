package intent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/lbctl/lbctl/bundle/dns"
	"github.com/lbctl/lbctl/bundle/inventory"
	"github.com/lbctl/lbctl/bundle/model"
)

// Options override what site.yaml says about name resolution.
type Options struct {
	// Zone is a zone file to resolve names with, instead of site.yaml's.
	Zone string
	// DNS is a DNS server (host or host:port), instead of site.yaml's.
	DNS string
	// Resolver, when set, is used instead of any zone or DNS server.
	Resolver dns.Resolver
}

// Resolve loads the intents tree in dir, opens the inventory and the zone
// or DNS server that site.yaml (or opts) names, and resolves the tree. All
// problems are returned at once; the ones in intents files are Errors.
func Resolve(ctx context.Context, dir string, opts Options) (*model.Site, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	// The inventory and the zone are opened while the tree loads.
	var (
		inv     Inventory
		r       dns.Resolver
		err     error
		sources = make(chan struct{})
	)
	t, errs := loadPartial(os.DirFS(dir), dir, func(t *Tree) {
		go func() {
			defer close(sources)
			inv, r, err = t.Sources(opts)
		}()
	})
	if t == nil {
		return nil, errs.Err()
	}
	<-sources
	var missing []*sourceError
	var brokenInv, brokenZone *brokenSource
	if err != nil {
		// Report the source's problems and resolve the rest without
		// repeating them for every name.
		missing = sourceErrors(err, errs)
		if inv == nil && t.Site.Inventory != "" {
			brokenInv = &brokenSource{}
			inv = brokenInv
		}
		if r == nil {
			brokenZone = &brokenSource{}
			r = brokenZone
		}
	}
	site, err := t.Resolve(ctx, r, inv)
	for _, se := range missing {
		asked := brokenZone
		if se.key == "inventory" {
			asked = brokenInv
		}
		t.reportMissing(se, asked, errs)
	}
	if err != nil && (!errors.Is(err, errSkip) || errs.Empty()) {
		var es Errors
		if errors.As(err, &es) {
			for _, e := range es {
				errs.AddErr(e)
			}
		} else {
			errs.Add(Pos{}, "%v", err)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return site, nil
}

// sourceError is a source site.yaml names (key: inventory or zone) that
// could not be opened.
type sourceError struct {
	key, path string
	err       error
}

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// sourceErrors adds the problems in err (from Sources) to errs, except the
// sources that could not be opened, which it returns: reportMissing
// reports them once the resolver has counted what they failed.
func sourceErrors(err error, errs *errList) []*sourceError {
	var missing []*sourceError
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var se *sourceError
		var pe *fs.PathError
		if errors.As(e, &se) && errors.As(se.err, &pe) && pe.Op == "open" {
			missing = append(missing, se)
			continue
		}
		for _, line := range strings.Split(e.Error(), "\n") {
			errs.AddErr(textError(line))
		}
	}
	return missing
}

// reportMissing reports a source that could not be opened once, at the
// line of site.yaml that names it, with the lookups it failed.
func (t *Tree) reportMissing(se *sourceError, asked *brokenSource, errs *errList) {
	cause := se.err.Error()
	var pe *fs.PathError
	if errors.As(se.err, &pe) {
		cause = pe.Err.Error()
	}
	site := filepath.Join(t.Root, SiteFileName)
	if t.Root == "" {
		site = SiteFileName
	}
	what := "backend groups and hosts"
	if se.key == "zone" {
		what = "names"
	}
	msg := fmt.Sprintf("%s %s: %s", se.key, se.path, cause)
	if asked != nil {
		if names := asked.askedFor(); len(names) > 0 {
			msg += fmt.Sprintf(": %d %s not looked up: %s", len(names), what, nameList(names, 3))
		}
	}
	errs.Add(t.siteSrc.keyPos(se.key, site), "%s", msg)
}

var posPrefix = regexp.MustCompile(`^(.+?):(\d+):(\d+): (.*)$`)

// textError turns a "file:line:col: message" line from another package into
// an Error, so that it sorts with the rest.
func textError(line string) *Error {
	if m := posPrefix.FindStringSubmatch(line); m != nil {
		l, _ := strconv.Atoi(m[2])
		c, _ := strconv.Atoi(m[3])
		return &Error{Pos: Pos{File: m[1], Line: l, Col: c}, Msg: m[4]}
	}
	return &Error{Msg: line}
}

// Sources opens the inventory and the resolver the site file names, with
// opts overriding it. The inventory is nil when the site names none; the
// resolver is nil when there is neither zone nor DNS server, which makes
// every lookup fail. On error, the sources that did open are returned too.
func (t *Tree) Sources(opts Options) (Inventory, dns.Resolver, error) {
	var errs []error
	var inv Inventory
	if t.Site.Inventory != "" {
		i, err := inventory.Load(filepath.Join(t.Root, filepath.FromSlash(t.Site.Inventory)))
		if err != nil {
			errs = append(errs, &sourceError{key: "inventory", path: t.Site.Inventory, err: err})
		} else {
			inv = i
		}
	}
	r := opts.Resolver
	zone, server := t.Site.Zone, t.Site.DNS
	if opts.Zone != "" || opts.DNS != "" {
		zone, server = "", opts.DNS
		if opts.Zone != "" {
			zone = opts.Zone
		}
	} else if zone != "" {
		zone = filepath.Join(t.Root, filepath.FromSlash(zone))
	}
	switch {
	case r != nil:
	case zone != "" && server != "":
		errs = append(errs, errors.New("set a zone or a DNS server, not both"))
	case zone != "":
		z, err := dns.LoadZone(zone)
		if err != nil && opts.Zone == "" {
			errs = append(errs, &sourceError{key: "zone", path: t.Site.Zone, err: err})
		} else if err != nil {
			errs = append(errs, err)
		} else {
			r = z
		}
	case server != "":
		r = dns.NewCache(dns.NewClient(server))
	}
	return inv, r, errors.Join(errs...)
}
