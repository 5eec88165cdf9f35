// Package traffic reads the traffic counters of every VIP's HAProxy through
// its admin socket (one "show info;show stat" per VIP per read, a bounded
// number at once, reused between close scrapes) and exports them as
// Prometheus metrics labelled vip, service, frontend, backend and server.
// It serves the agent's /metrics and status page; it never changes
// HAProxy's state and must not decide health (that is package health).
package traffic
