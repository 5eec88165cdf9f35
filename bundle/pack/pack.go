// Package pack is what a bundle carries: the resolved model (resolved.json)
// and, for reading convenience, each node profile (nodes/<hostname>.json).
// It turns a resolved site into archive payload files and a verified
// archive back into the site. Rendering happens on each node at install
// time, from these files alone.
package pack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/model"
)

// ResolvedPath is the resolved model's path in a bundle.
const ResolvedPath = "resolved.json"

// Files returns the payload of a bundle of site, sorted by path.
func Files(site *model.Site) ([]archive.File, error) {
	b, err := model.Encode(site)
	if err != nil {
		return nil, err
	}
	files := []archive.File{{Path: ResolvedPath, Data: b}}
	for _, n := range site.Nodes {
		nb, err := json.MarshalIndent(n, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files, archive.File{Path: "nodes/" + n.Hostname + ".json", Data: append(nb, '\n')})
	}
	slices.SortFunc(files, func(a, b archive.File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// Manifest is m for a bundle of site: m with the site's name.
func Manifest(site *model.Site, m archive.Manifest) archive.Manifest {
	m.Site = site.Name
	return m
}

// Site decodes the resolved model of a verified bundle and checks that the
// node profile files and the manifest's site name agree with it.
func Site(b *archive.Bundle) (*model.Site, error) {
	raw, ok := b.File(ResolvedPath)
	if !ok {
		return nil, fmt.Errorf("bundle %d: no %s", b.Manifest.Serial, ResolvedPath)
	}
	site, err := model.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("bundle %d: %w", b.Manifest.Serial, err)
	}
	if m := b.Manifest.Site; m != "" && m != site.Name {
		return nil, fmt.Errorf("bundle %d: the manifest names site %q, its %s site %q", b.Manifest.Serial, m, ResolvedPath, site.Name)
	}
	want, err := Files(site)
	if err != nil {
		return nil, err
	}
	var errs []error
	if len(want) != len(b.Files) {
		errs = append(errs, fmt.Errorf("bundle %d: %d payload files, the resolved model makes %d", b.Manifest.Serial, len(b.Files), len(want)))
	}
	for _, f := range want {
		got, ok := b.File(f.Path)
		if !ok || !bytes.Equal(got, f.Data) {
			errs = append(errs, fmt.Errorf("bundle %d: %s does not match the resolved model", b.Manifest.Serial, f.Path))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return site, nil
}
