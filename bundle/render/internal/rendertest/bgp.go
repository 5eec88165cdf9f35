package rendertest

import (
	"net/netip"

	"github.com/lbctl/lbctl/bundle/model"
)

// SiteBGP is Site with every BGP attribute and session option set: site
// and node communities, MED, local preference and prepend on both nodes,
// graceful restart, a password file (passwordFile, which must exist for
// bird -p), multihop, a source address and per-peer BFD timers on lb1;
// VIP 192.0.2.10 primary on lb1 with communities, 192.0.2.20 with a large
// community only.
func SiteBGP(passwordFile string) *model.Site {
	s := Site()
	u := func(v uint32) *uint32 { return &v }
	for i := range s.Nodes {
		n := &s.Nodes[i]
		n.BGP = model.NodeBGP{
			Communities:      []model.Community{{ASN: 65000, Value: 1}, {ASN: 65000, Value: 100 + uint16(i)}},
			LargeCommunities: []model.LargeCommunity{{Global: 65000, Local1: 0, Local2: uint32(i + 1)}},
			MED:              u(10),
			LocalPref:        u(200),
			Prepend:          1,
			Backup:           &model.Backup{LocalPref: 50, Prepend: 2},
		}
	}
	lb1 := &s.Nodes[0]
	lb1.BGP.GracefulRestart, lb1.BGP.RestartTime = true, 90
	rr := &lb1.RouteReflectors[0]
	rr.PasswordFile = passwordFile
	rr.Multihop = 2
	rr.SourceAddress = netip.MustParseAddr("198.51.100.11")
	rr.BFDIntervalMS, rr.BFDMultiplier = 300, 5
	for i := range s.VIPs {
		switch v := &s.VIPs[i]; v.Name {
		case "192.0.2.10":
			v.BGP = model.RouteAttrs{Communities: []model.Community{{ASN: 65000, Value: 200}},
				LargeCommunities: []model.LargeCommunity{{Global: 65000, Local1: 2, Local2: 200}}, Primary: "lb1"}
		case "192.0.2.20":
			v.BGP = model.RouteAttrs{LargeCommunities: []model.LargeCommunity{{Global: 65000, Local1: 2, Local2: 20}}}
		}
	}
	return s
}
