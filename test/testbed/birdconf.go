package testbed

import (
	"errors"

	"github.com/lbctl/lbctl/health/bird/birdtest"
)

func joinErrs(errs []error) error { return errors.Join(errs...) }

// rrConfig renders the route reflector's BIRD configuration: an rr client
// session per LB node (IPv4 transport carrying IPv4 and IPv6 routes; an
// IPv6 session too for nodes whose profile names the reflector's IPv6
// address), and a session to the router sending every path (ADD-PATH) of
// BGP routes only. BFD runs on the LB sessions when bfd is true.
func (l *layout) rrConfig(bfd, v6Sessions bool) string {
	c := birdtest.Config{Comment: "lbctl testbed: route reflector (generated)", RouterID: RRCore4.String(),
		Log: l.dir + "/rr/bird.log", Direct: coreIf}
	if bfd {
		c.BFD = coreIf
	}
	for _, n := range l.nodes {
		s := birdtest.ReflectorClient(n.Name, "LB node "+n.Hostname, RRCore4.String(), n.Core4.String(), l.asn)
		s.BFD = bfd
		c.Sessions = append(c.Sessions, s)
		if v6Sessions {
			s := birdtest.ReflectorClient(n.Name+"_v6", "LB node "+n.Hostname+" over IPv6", RRCore6.String(), n.Core6.String(), l.asn)
			s.BFD, s.IPv4 = bfd, ""
			c.Sessions = append(c.Sessions, s)
		}
	}
	c.Sessions = append(c.Sessions, birdtest.Session{Name: "rtr", Description: "router", Local: RRCore4.String(),
		Neighbor: RouterCore4.String(), AS: l.asn,
		IPv4: "import none; export where source = RTS_BGP; add paths tx;",
		IPv6: "import none; export where source = RTS_BGP; add paths tx;"})
	return c.String()
}

// routerConfig renders the router's BIRD configuration: iBGP to the route
// reflector receiving every path, and kernel protocols that install them
// with merged paths (ECMP).
func (l *layout) routerConfig() string {
	return birdtest.Config{Comment: "lbctl testbed: router (generated)", RouterID: RouterCore4.String(),
		Log: l.dir + "/router/bird.log", Kernel: true,
		Sessions: []birdtest.Session{{Name: "reflector", Description: "route reflector", Local: RouterCore4.String(),
			Neighbor: RRCore4.String(), AS: l.asn,
			IPv4: "import all; export none; add paths rx;", IPv6: "import all; export none; add paths rx;"}},
	}.String()
}
