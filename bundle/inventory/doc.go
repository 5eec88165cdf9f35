// Package inventory reads Ansible inventories in the YAML format (the
// "all / children / hosts / vars" layout of Ansible's yaml inventory plugin)
// so that intents can name LB nodes and backends by inventory group.
//
// Only the YAML form is accepted; the INI form is not, and a file in it is
// reported as a YAML error. The package keeps what a build needs: group
// membership (nested children, a host in several groups, the implicit "all"
// and "ungrouped" groups), each host's own variables and its ansible_host
// address. Group variables are kept only to inherit ansible_host, using
// Ansible's precedence (deeper groups win over their parents, then higher
// ansible_group_priority, then the group name later in order).
//
// Host name ranges such as "web[01:03].example.org" or "db-[a:c]" are
// expanded as Ansible does. Anchors, aliases and merge keys work. Every error
// carries the file, line and column it refers to ("hosts.yaml:12:5: ...").
//
// The package reads the inventory file in Load and nothing else: it never
// resolves names (see bundle/dns), touches the network or logs.
package inventory
