// Package intent loads an intents tree — the YAML files in which service
// owners say what they want — and resolves it into the explicit model of
// bundle/model.
//
// A tree has site.yaml at its root (site name, inventory, zone or DNS
// server, node profile directory), defaults.yaml files at any level
// (defaults merged root to leaf, locked fields, policy) and one YAML file
// per service, named by its path. Load reads and checks the files: strict
// decoding with positions, short forms, defaults merge, locks and policy
// syntax. Tree.Resolve looks names up through a dns.Resolver and backend
// groups in an inventory, applies the inference rules and the cross-service
// checks, and groups the services into VIPs. Every problem of the whole
// tree is reported at once, as Errors sorted by file and line.
//
// The format, the inference table and the checks are documented in
// docs/intents.md; TestInference has one case per inference rule.
//
// The package reads the tree, the inventory and the zone file, and asks
// the resolver it is given; it never logs and never imports the node side.
// The result depends only on the files' contents and the answers of the
// resolver, not on the order of directory listings or maps.
package intent
