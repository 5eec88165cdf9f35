// Package haproxy renders the HAProxy 2.6 configuration of one VIP: a
// master-worker process with its own admin socket, one frontend per port
// binding every VIP address of the port's families, one backend per service
// and backend port.
//
// What it renders, from the resolved model only:
//   - TLS termination with the services' policies (minimum version, Mozilla
//     cipher profiles); when several certificates or policies share a port, a
//     crt-list next to haproxy.cfg lets SNI pick the certificate and policy;
//   - routing of services sharing a port: by Host header (http) or SNI (tcp),
//     the first serving service of the port being the default;
//   - HTTP to HTTPS redirects, path redirects, HSTS, X-Forwarded-For or PROXY
//     v1/v2 towards the servers, health checks (httpchk, smtpchk, ldap-check,
//     connect checks), client source ACLs, timeouts, and "usesrc clientip"
//     for transparent services.
//
// The package is pure: it never reads the file system, the clock or the
// network, and never runs haproxy. Paths on the node (certificates, the VIP
// directory, the admin socket) come from Options.
package haproxy
