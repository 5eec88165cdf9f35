package validate

import (
	"bytes"
	"os"
	"path"
	"strings"

	"github.com/lbctl/lbctl/node/plan"
)

// fileRef is a file HAProxy reads when it loads a VIP's configuration.
type fileRef struct {
	// Kind names the file in errors: "certificate", "key", "ca-file", ...
	Kind string
	Path string
}

// fileKeywords are the keywords (on bind and server lines, in global and
// crt-list options) followed by a file HAProxy reads at start, with the
// kind of file and the base directive that relative paths follow.
var fileKeywords = map[string]struct{ kind, base string }{
	"crt":               {"certificate", "crt-base"},
	"ca-file":           {"ca-file", "ca-base"},
	"ca-verify-file":    {"ca-verify-file", "ca-base"},
	"crl-file":          {"crl-file", "ca-base"},
	"ssl-dh-param-file": {"dh-param-file", ""},
}

// sidecars are the files HAProxy (ssl-load-extra-files, "all" by default)
// loads next to a certificate when they exist; an unreadable one fails the
// start. The .key file is read only when the certificate has no key.
var sidecars = []string{".ocsp", ".issuer", ".sctl"}

// references lists the files a VIP's configuration makes HAProxy read: the
// certificates, keys and CA/CRL files of haproxy.cfg and of the crt-lists
// it names. A crt-list under vipDir/<vip>/ is read from the VIP's rendered
// files, any other one is itself a reference. Certificate sidecars are
// included when they exist on the node. Relative paths follow crt-base and
// ca-base, else the unit's working directory "/".
func references(vip *plan.VIP, vipDir string) []fileRef {
	files := map[string][]byte{}
	for _, f := range vip.Files {
		files[f.Path] = f.Data
	}
	live := path.Join(vipDir, vip.Name) + "/"
	base := map[string]string{}
	var out []fileRef
	seen := map[fileRef]bool{}
	add := func(kind, p, baseKey string) {
		if !path.IsAbs(p) {
			p = path.Join("/", base[baseKey], p)
		}
		r := fileRef{Kind: kind, Path: p}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	var scan func(fields []string)
	scan = func(fields []string) {
		for i := 0; i+1 < len(fields); i++ {
			if k, ok := fileKeywords[fields[i]]; ok {
				add(k.kind, fields[i+1], k.base)
				i++
			} else if fields[i] == "crt-list" {
				p := fields[i+1]
				i++
				if rel, ok := strings.CutPrefix(p, live); ok && files[rel] != nil {
					for _, l := range lines(files[rel]) {
						add("certificate", l[0], "crt-base")
						scan(strings.FieldsFunc(strings.Join(l[1:], " "), func(r rune) bool {
							return r == ' ' || r == '\t' || r == '[' || r == ']'
						}))
					}
				} else {
					add("crt-list", p, "crt-base")
				}
			}
		}
	}
	for _, l := range lines(files["haproxy.cfg"]) {
		if (l[0] == "crt-base" || l[0] == "ca-base") && len(l) > 1 {
			base[l[0]] = l[1]
		}
		scan(l)
	}
	for _, r := range out {
		if r.Kind != "certificate" {
			continue
		}
		exts := sidecars
		if data, err := os.ReadFile(r.Path); err == nil && !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
			exts = append([]string{".key"}, sidecars...)
		}
		for _, ext := range exts {
			if _, err := os.Stat(r.Path + ext); err == nil {
				add(strings.TrimPrefix(ext, "."), r.Path+ext, "")
			}
		}
	}
	return out
}

// lines splits a configuration into the fields of its lines, without
// comments and blank lines.
func lines(b []byte) [][]string {
	var out [][]string
	for _, l := range strings.Split(string(b), "\n") {
		l, _, _ = strings.Cut(l, "#")
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}
