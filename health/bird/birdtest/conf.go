package birdtest

import (
	"fmt"
	"strings"
)

// The BIRD configurations of the tests and of the sandbox (test/testbed):
// every LB stand-in, route reflector and router that a test or the sandbox
// runs is a Config written here, so they share one shape and one set of
// timers. The product's own bird.conf is bundle/render/bird's.

// Timers are the BGP timers of every test session: fast, so that sessions
// come back within seconds.
const Timers = `hold time 3; keepalive time 1;
  connect delay time 1; connect retry time 2; error wait time 1, 5;`

// Config is a BIRD configuration.
type Config struct {
	// Comment, when set, is the first line ("# " is prepended).
	Comment  string
	RouterID string
	// Log is the log file.
	Log string
	// Direct, when set, adds a direct protocol on this interface (a route
	// reflector needs it: without it iBGP next hops do not resolve).
	Direct string
	// BFD, when set, runs BFD (100 ms, multiplier 3) on the interfaces
	// matching this pattern; sessions turn it on with Session.BFD.
	BFD string
	// Kernel adds kernel4 and kernel6, installing every route with merged
	// paths (ECMP).
	Kernel   bool
	Statics  []Static
	Sessions []Session
}

// Static is a static protocol.
type Static struct {
	Name string
	// Channel is "ipv4" or "ipv6".
	Channel string
	// Body is its routes, or an Include.
	Body string
}

// Session is an iBGP session (single hop, "direct").
type Session struct {
	Name, Description string
	Local, Neighbor   string
	AS                uint32
	RRClient          bool
	BFD               bool
	// IPv4 and IPv6 are the bodies of the channels ("import all; export
	// none;"); an empty one is left out.
	IPv4, IPv6 string
}

// Include is a static protocol's body that includes the file at path.
func Include(path string) string { return fmt.Sprintf("include %q;", path) }

// Blackholes is a static protocol's body with a blackhole route per
// prefix.
func Blackholes(prefixes []string) string {
	lines := make([]string, len(prefixes))
	for i, p := range prefixes {
		lines[i] = "route " + p + " blackhole;"
	}
	return strings.Join(lines, "\n  ")
}

// Announcer is an LB node stand-in, as the product's bird.conf is: static
// protocols vips4 and vips6 with the given bodies, exported over one iBGP
// session "reflector" to the route reflector rr with next hop self.
func Announcer(routerID, log, rr string, as uint32, vips4, vips6 string) Config {
	return Config{
		RouterID: routerID,
		Log:      log,
		Statics:  []Static{{"vips4", "ipv4", vips4}, {"vips6", "ipv6", vips6}},
		Sessions: []Session{{
			Name: "reflector", Description: "route reflector", Local: routerID, Neighbor: rr, AS: as,
			IPv4: `import none; export where proto = "vips4"; next hop self;`,
			IPv6: `import none; export where proto = "vips6"; next hop self;`,
		}},
	}
}

// ReflectorClient is a route reflector's session to an LB node: rr
// client, importing what the node announces on both channels.
func ReflectorClient(name, description, local, neighbor string, as uint32) Session {
	return Session{Name: name, Description: description, Local: local, Neighbor: neighbor, AS: as, RRClient: true,
		IPv4: "import all; export none;", IPv6: "import all; export none;"}
}

// String renders the configuration.
func (c Config) String() string {
	var b strings.Builder
	if c.Comment != "" {
		fmt.Fprintf(&b, "# %s\n", c.Comment)
	}
	fmt.Fprintf(&b, "router id %s;\nlog %q all;\nprotocol device { scan time 10; }\n", c.RouterID, c.Log)
	if c.Direct != "" {
		fmt.Fprintf(&b, "protocol direct { ipv4; ipv6; interface %q; }\n", c.Direct)
	}
	if c.BFD != "" {
		fmt.Fprintf(&b, "protocol bfd { interface %q { interval 100 ms; multiplier 3; }; }\n", c.BFD)
	}
	if c.Kernel {
		for _, v := range []string{"4", "6"} {
			fmt.Fprintf(&b, "protocol kernel kernel%s {\n  ipv%s { import none; export all; };\n  merge paths on;\n}\n", v, v)
		}
	}
	for _, s := range c.Statics {
		fmt.Fprintf(&b, "protocol static %s {\n  %s;\n  %s\n}\n", s.Name, s.Channel, s.Body)
	}
	for _, s := range c.Sessions {
		s.write(&b)
	}
	return b.String()
}

func (s Session) write(b *strings.Builder) {
	fmt.Fprintf(b, "protocol bgp %s {\n", s.Name)
	if s.Description != "" {
		fmt.Fprintf(b, "  description %q;\n", s.Description)
	}
	fmt.Fprintf(b, "  local %s as %d;\n  neighbor %s as %d;\n  direct;\n", s.Local, s.AS, s.Neighbor, s.AS)
	if s.RRClient {
		b.WriteString("  rr client;\n")
	}
	if s.BFD {
		b.WriteString("  bfd on;\n")
	}
	fmt.Fprintf(b, "  %s\n", Timers)
	if s.IPv4 != "" {
		fmt.Fprintf(b, "  ipv4 { %s };\n", s.IPv4)
	}
	if s.IPv6 != "" {
		fmt.Fprintf(b, "  ipv6 { %s };\n", s.IPv6)
	}
	b.WriteString("}\n")
}
