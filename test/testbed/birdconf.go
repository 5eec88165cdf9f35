package testbed

import (
	"errors"
	"fmt"
	"strings"
)

func joinErrs(errs []error) error { return errors.Join(errs...) }

// Fast timers (see shared/TESTBED.md): sessions come back within seconds.
const birdTimers = `  hold time 3; keepalive time 1;
  connect delay time 1; connect retry time 2; error wait time 1, 5;`

// rrConfig renders the route reflector's BIRD configuration: an rr client
// session per LB node (IPv4 transport carrying IPv4 and IPv6 routes; an
// IPv6 session too for nodes whose profile names the reflector's IPv6
// address), and a session to the router sending every path (ADD-PATH) of
// BGP routes only. BFD runs on the LB sessions when bfd is true.
func (l *layout) rrConfig(bfd, v6Sessions bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# lbctl testbed: route reflector (generated)
router id %s;
log "%s/rr/bird.log" all;
protocol device { scan time 10; }
protocol direct { ipv4; ipv6; interface "%s"; }
`, RRCore4, l.dir, coreIf)
	bfdOn := ""
	if bfd {
		fmt.Fprintf(&b, "protocol bfd { interface \"%s\" { interval 100 ms; multiplier 3; }; }\n", coreIf)
		bfdOn = "  bfd on;\n"
	}
	for _, n := range l.nodes {
		fmt.Fprintf(&b, `protocol bgp %s {
  description "LB node %s";
  local %s as %d;
  neighbor %s as %d;
  direct;
  rr client;
%s%s
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
`, n.Name, n.Hostname, RRCore4, l.asn, n.Core4, l.asn, bfdOn, birdTimers)
		if v6Sessions {
			fmt.Fprintf(&b, `protocol bgp %s_v6 {
  description "LB node %s over IPv6";
  local %s as %d;
  neighbor %s as %d;
  direct;
  rr client;
%s%s
  ipv6 { import all; export none; };
}
`, n.Name, n.Hostname, RRCore6, l.asn, n.Core6, l.asn, bfdOn, birdTimers)
		}
	}
	fmt.Fprintf(&b, `protocol bgp rtr {
  description "router";
  local %s as %d;
  neighbor %s as %d;
  direct;
%s
  ipv4 { import none; export where source = RTS_BGP; add paths tx; };
  ipv6 { import none; export where source = RTS_BGP; add paths tx; };
}
`, RRCore4, l.asn, RouterCore4, l.asn, birdTimers)
	return b.String()
}

// routerConfig renders the router's BIRD configuration: iBGP to the route
// reflector receiving every path, and kernel protocols that install them
// with merged paths (ECMP).
func (l *layout) routerConfig() string {
	return fmt.Sprintf(`# lbctl testbed: router (generated)
router id %s;
log "%s/router/bird.log" all;
protocol device { scan time 10; }
protocol kernel kernel4 {
  ipv4 { import none; export all; };
  merge paths on;
}
protocol kernel kernel6 {
  ipv6 { import none; export all; };
  merge paths on;
}
protocol bgp reflector {
  description "route reflector";
  local %s as %d;
  neighbor %s as %d;
  direct;
%s
  ipv4 { import all; export none; add paths rx; };
  ipv6 { import all; export none; add paths rx; };
}
`, RouterCore4, l.dir, RouterCore4, l.asn, RRCore4, l.asn, birdTimers)
}
