#!/usr/bin/env bash
# The lbctl demo (`make demo`): builds lbctl, brings up the sandbox (an
# anycast site in network namespaces on this machine) for examples/campus,
# shows it working and tears it down.
#
#   KEEP=1 make demo   leave the sandbox up and print how to enter it
#   LBCTL=path         use this lbctl binary instead of building bin/lbctl
#
# Skeleton: the install, traffic and failover steps are marked TODO below.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
LBCTL=${LBCTL:-}          # set to use an lbctl binary already built
EXAMPLE=examples/campus
KEEP=${KEEP:-0}
DIR=/run/lbctl-testbed
START=$(date +%s)

say()  { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die()  { printf 'demo: %s\n' "$*" >&2; exit 1; }

if [ ! -d "$EXAMPLE" ]; then
  echo "demo: $EXAMPLE does not exist yet, so there is nothing to show; skipping."
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "the sandbox builds network namespaces and needs root: run it as root (sudo make demo)"
for tool in ip nsenter bird; do
  command -v "$tool" >/dev/null || die "$tool is missing: run 'make deps' (Debian packages iproute2, util-linux, bird2)"
done

if [ -z "$LBCTL" ]; then
  LBCTL=bin/lbctl
  say "Building lbctl into $LBCTL"
  $GO build -trimpath -o "$LBCTL" ./cmd/lbctl
fi
info "$($LBCTL --version)"

if [ -e "$DIR/state.json" ]; then
  say "A sandbox from an earlier run is still up: tearing it down first"
  $LBCTL testbed down
fi

teardown() {
  local rc=$?
  if [ "$KEEP" = 1 ] && [ "$rc" -eq 0 ]; then
    return
  fi
  say "Tearing the sandbox down"
  $LBCTL testbed down || true
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# TODO(install): make a key pair (lbctl key generate) and build and sign the
# $EXAMPLE bundle (lbctl build), before the sandbox comes up.

say "Bringing up the sandbox for $EXAMPLE: router, route reflector, two LB nodes, client, one namespace per backend"
$LBCTL testbed up "$EXAMPLE"

say "Checking that the backend servers answer on the backend segment (from lb1, without any load balancer)"
first_backend=$(sed -n 's/.*"address": "\(203\.0\.113\.[0-9]*\)".*/\1/p' "$DIR/state.json" | head -1)
if [ -n "$first_backend" ]; then
  info "$(ip netns exec lbtb-lb1 curl -s --max-time 5 -H 'Host: www.campus.example' "http://$first_backend/" || echo "no answer from $first_backend")"
fi

# TODO(install): install the signed bundle on both LB nodes (lbctl install in
# lbtb-lb1 and lbtb-lb2) and print `lbctl status` of each node.

say "Sandbox status: processes, BGP sessions and the VIP routes the router has learned"
$LBCTL testbed status || info "(the LB nodes' BGP sessions come up once lbctl is installed on them)"

# TODO(traffic): requests from lbtb-client through the VIPs, showing which
# backend answered: HTTP redirect to HTTPS, HTTPS with the right
# certificate (CA in $DIR/ca.pem), a TCP service with PROXY protocol, an
# IPv6 VIP.

# TODO(failover): kill one LB's HAProxy for a VIP, show the route from that
# node disappear at the router and requests keep succeeding through the
# other node.

# TODO(summary): one-screen summary of what was shown.
say "Done in $(( $(date +%s) - START ))s"

if [ "$KEEP" = 1 ]; then
  say "The sandbox stays up (KEEP=1). Enter a namespace with:"
  for ns in lbtb-client lbtb-router lbtb-rr lbtb-lb1 lbtb-lb2; do
    info "ip netns exec $ns bash"
  done
  info "(backends: ip netns exec lbtb-be1 bash, ... ; see '$LBCTL testbed status')"
  info "Tear it down with: $LBCTL testbed down"
fi
