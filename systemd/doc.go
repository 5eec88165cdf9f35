// Package systemd owns lbctl's systemd side on a node: the template unit
// lb-haproxy@.service (one HAProxy master-worker per VIP) and its drop-ins as
// text, a writer that puts them in a unit directory atomically, and a small
// Manager that drives units over D-Bus and waits for each job's result.
//
// Text generation (Template, TransparentDropIn, Files) is pure. Writing
// (UnitWriter) and D-Bus (NewDBus) are the only side effects; Fake is an
// in-memory Manager for tests of code that drives units.
//
// The package never logs and never reads HAProxy configs; what goes into
// /etc/lbctl/vips/<vip>/haproxy.cfg is the renderer's business.
package systemd
