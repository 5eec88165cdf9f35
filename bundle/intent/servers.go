package intent

import (
	"fmt"
	"strings"

	"github.com/lbctl/lbctl/bundle/model"
)

// serverIs reports whether a resolved server is the one a setting names:
// the same name, or its first label ("typo3-web2" for
// typo3-web2.campus.example).
func serverIs(name, asked string) bool {
	return name == asked || strings.HasPrefix(name, asked+".")
}

// applyServerSettings sets the weight and disabled flag of the servers
// backend.servers names; a name that matches no server is an error.
func applyServerSettings(s *Service, mb *model.Backend, settings []ServerSetting, errs *errList) {
	for i, ss := range settings {
		at := s.at(fmt.Sprintf("backend.servers.%d.name", i))
		found := false
		for j := range mb.Servers {
			srv := &mb.Servers[j]
			if !serverIs(srv.Name, ss.Name) {
				continue
			}
			found = true
			if ss.Weight != nil {
				w := *ss.Weight
				srv.Weight = &w
			}
			srv.Disabled = ss.Disabled
		}
		if !found && len(mb.Servers) > 0 {
			names := make([]string, len(mb.Servers))
			for j, srv := range mb.Servers {
				names[j] = srv.Name
			}
			errs.Add(at, "backend.servers: no server %q in the backend (servers: %s)", ss.Name, strings.Join(names, " "))
		}
	}
}

// enabledServers counts the servers not disabled.
func enabledServers(servers []model.Server) int {
	n := 0
	for _, s := range servers {
		if !s.Disabled {
			n++
		}
	}
	return n
}
