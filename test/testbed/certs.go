package testbed

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/internal/testcert"
)

// certHosts maps every TLS certificate name of the model to the host names
// it must cover: the FQDNs and aliases of the services using it.
func certHosts(m *model.Site) (map[string][]string, error) {
	out := map[string][]string{}
	for _, svc := range m.Services {
		if svc.TLS == nil || svc.TLS.Certificate == "" {
			continue
		}
		name := svc.TLS.Certificate
		if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
			return nil, fmt.Errorf("service %s: certificate name %q is not a file name", svc.Name, name)
		}
		hosts := out[name]
		for _, h := range append([]string{svc.FQDN}, svc.Aliases...) {
			if h != "" && !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
		out[name] = hosts
	}
	for name := range out {
		slices.Sort(out[name])
	}
	return out, nil
}

// writeCerts makes the testbed CA (dir/ca.pem), one certificate per name
// and node (<node.CertDir>/<name>.pem) and one per HTTPS backend
// (dir/backends/<netns>.pem, covering its name and address).
func writeCerts(dir string, m *model.Site, nodes []Node, backends []Backend) error {
	hosts, err := certHosts(m)
	if err != nil {
		return err
	}
	ca, err := testcert.NewCA("lbctl testbed CA")
	if err != nil {
		return fmt.Errorf("testbed CA: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM(), 0o644); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	// HAProxy runs as the haproxy user: like on a real node, certificates
	// are root:haproxy 0640 in a root:haproxy 0750 directory.
	gid := -1
	if g, err := user.LookupGroup("haproxy"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	for _, n := range nodes {
		if err := os.MkdirAll(n.CertDir, 0o750); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if err := chownMode(n.CertDir, gid, 0o750); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		for name, hs := range hosts {
			pem, err := ca.IssueValid(hs...)
			if err != nil {
				return fmt.Errorf("node %s: certificate %s: %w", n.Name, name, err)
			}
			p := filepath.Join(n.CertDir, name+".pem")
			if err := os.WriteFile(p, pem, 0o600); err != nil {
				return fmt.Errorf("node %s: certificate %s: %w", n.Name, name, err)
			}
			if err := chownMode(p, gid, 0o640); err != nil {
				return fmt.Errorf("node %s: certificate %s: %w", n.Name, name, err)
			}
		}
	}
	for _, b := range backends {
		if len(b.HTTPS) == 0 {
			continue
		}
		bdir := filepath.Join(dir, "backends")
		if err := os.MkdirAll(bdir, 0o700); err != nil {
			return err
		}
		pem, err := ca.IssueValid(b.Name, b.Address.String())
		if err != nil {
			return fmt.Errorf("backend %s: certificate: %w", b.Name, err)
		}
		if err := os.WriteFile(backendCert(dir, b), pem, 0o600); err != nil {
			return fmt.Errorf("backend %s: certificate: %w", b.Name, err)
		}
	}
	return nil
}

func backendCert(dir string, b Backend) string {
	return filepath.Join(dir, "backends", b.NetNS+".pem")
}

// chownMode gives path the group gid (none when gid < 0: the file stays
// root's only) and the mode.
func chownMode(path string, gid int, mode os.FileMode) error {
	if gid < 0 {
		return nil
	}
	if err := os.Chown(path, 0, gid); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
