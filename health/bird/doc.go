// Package bird drives a BIRD 2 routing daemon through its control socket, the
// same unix socket birdc uses (bird -s SOCK), without shelling out to birdc.
//
// It owns two things: a Client that speaks BIRD's reply protocol (numbered
// reply codes, continuation lines) and knows the few commands the agent needs
// (configure, show route, show protocols, enable and disable), and an
// Announcer that owns the announcement include files (one route per VIP, for
// the static protocols vips4 and vips6), rewrites them atomically, reloads
// BIRD and checks with show route that BIRD announces exactly the intended set.
//
// The package does not render bird.conf (bundle/render/bird does) and does not
// decide which VIPs are healthy (the health package does); it takes include
// paths and protocol names as configuration. It never logs.
package bird
