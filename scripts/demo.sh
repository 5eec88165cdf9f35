#!/usr/bin/env bash
# The lbctl demo (`make demo`): on one machine, an anycast site in network
# namespaces (router, route reflector, two LB nodes running systemd, a client,
# one namespace per backend), the examples/campus bundle signed and installed
# on both LB nodes, real requests through the VIPs, a failover, teardown.
#
#   make demo            run it (root; about a minute once lbctl is built)
#   make demo KEEP=1     leave the sandbox up and print how to enter it
#   LBCTL=path           use this lbctl binary instead of building bin/lbctl
#   TESTBED=path         use this lbctl-testbed (the sandbox program) instead
#                        of building bin/lbctl-testbed
set -uo pipefail

cd "$(dirname "$0")/.."
EXAMPLE=examples/campus
KEEP=${KEEP:-0}
LBCTL=${LBCTL:-}
TESTBED=${TESTBED:-}
DIR=/run/lbctl-testbed
START=$(date +%s)

say()  { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die()  { printf 'demo: %s\n' "$*" >&2; exit 1; }
indent() { sed 's/^/    /'; }

RESULTS=()
FAILED=0
# result OK|FAIL "what was shown"
result() {
  RESULTS+=("$(printf '%-4s %s' "$1" "$2")")
  if [ "$1" = OK ]; then info "ok: $2"; else info "FAILED: $2"; FAILED=1; fi
}

[ "$(id -u)" -eq 0 ] || die "the sandbox builds network namespaces and runs systemd in them: run it as root (sudo make demo)"
for tool in ip nsenter unshare bird haproxy curl /lib/systemd/systemd; do
  command -v "$tool" >/dev/null || die "$tool is missing: run 'make deps' as root"
done

if [ -z "$LBCTL" ] || [ -z "$TESTBED" ]; then
  say "Building lbctl into bin/lbctl (and the sandbox program into bin/lbctl-testbed)"
  make -s build || die "build failed"
fi
LBCTL=${LBCTL:-bin/lbctl}
TESTBED=${TESTBED:-bin/lbctl-testbed}
info "$($LBCTL --version)"

if [ -e "$DIR/state.json" ]; then
  say "A sandbox from an earlier run is still up: tearing it down first"
  $TESTBED down
fi

WORK=$(mktemp -d /tmp/lbctl-demo.XXXXXX)
teardown() {
  local rc=$?
  [ "$FAILED" = 0 ] || rc=1
  if [ "$KEEP" = 1 ]; then
    exit "$rc"
  fi
  say "Tearing the sandbox down"
  $TESTBED down | indent || true
  rm -rf "$WORK"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

C="ip netns exec lbtb-client"
CA=$DIR/ca.pem

say "Making a signing key pair (the admins' key; nodes trust only its public half)"
$LBCTL keygen --unencrypted "$WORK/admin" | indent || die "keygen failed"

say "Resolving $EXAMPLE and building a signed bundle"
$LBCTL build "$EXAMPLE" --key "$WORK/admin.key" -o "$WORK/campus.bundle" | indent || die "build failed"

say "Bringing up the sandbox: router (ECMP), route reflector, LB nodes lb1 and lb2 (systemd as PID 1 each), client, one namespace per backend"
T0=$(date +%s%N)
$TESTBED up "$EXAMPLE" > "$WORK/up.txt" || { cat "$WORK/up.txt"; die "sandbox did not come up"; }
grep -E '^(NAMESPACE|lbtb-(router|rr|lb1|lb2|client)) ' "$WORK/up.txt" | indent
info "... and $(grep -c '^lbtb-be' "$WORK/up.txt") backend namespaces, each running a small server that says who it is and what it saw"
info "(up in $(( ($(date +%s%N) - T0) / 1000000 )) ms)"

say "Installing the bundle on both LB nodes: lbctl install inside each node (verify, render, validate, start one HAProxy per VIP under systemd, health gate, BIRD)"
info "first the node's own setup, as the Debian package and an admin would: /usr/bin/lbctl, /etc/lbctl/lbctl.yaml,"
info "the admins' public key in /etc/lbctl/trusted.d, test certificates in /etc/lbctl/certs, the shipped lbctl-agent.service"
AGENT_UNIT=packaging/systemd/lbctl-agent.service
if $TESTBED install --lbctl "$LBCTL" --pubkey "$WORK/admin.pub" --agent-unit "$AGENT_UNIT" "$WORK/campus.bundle" > "$WORK/install.txt" 2>&1; then
  grep -E 'installed release|lbctl binary' "$WORK/install.txt" | indent
  result OK "bundle installed: $(awk '/^lb[0-9]+:/{n=substr($1,1,length($1)-1)} /installed release/{match($0,/installed release [0-9]+/); r=substr($0,RSTART+18,RLENGTH-18); match($0,/ in [0-9.]+m?s/); t=substr($0,RSTART+4,RLENGTH-4); printf "%s%s release %s in %s", sep, n, r, t; sep=", "}' "$WORK/install.txt")"
else
  indent < "$WORK/install.txt"
  result FAIL "install on the LB nodes"
  exit 1
fi

VIPS="192.0.2.10 192.0.2.11 192.0.2.12 192.0.2.20 192.0.2.21 192.0.2.30 192.0.2.40 192.0.2.50 2001:db8:10::10 2001:db8:10::11 2001:db8:20::20"
say "Waiting until the router has a route to every VIP through both LB nodes (BGP via the route reflector)"
if $TESTBED routes --wait 30s $VIPS > /dev/null; then
  result OK "router: ECMP route to all 11 VIP addresses through lb1 and lb2"
else
  result FAIL "router: ECMP routes to every VIP"
fi

for n in lb1 lb2; do
  say "lbctl status on $n"
  $TESTBED exec $n lbctl status | indent
done

say "The router's kernel routes to the VIPs (installed by BIRD, one next hop per LB node)"
ip -n lbtb-router -4 route show proto bird | indent
ip -n lbtb-router -6 route show proto bird | grep -v '^2001:db8:\(100\|ffff\|c\)::' | indent

say "Requests from the client (198.51.100.130, 2001:db8:c::2) through the VIPs"

info "1. http://wiki.campus.example/page (VIP 192.0.2.11 port 80): redirect to HTTPS"
out=$($C curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{redirect_url}' --resolve wiki.campus.example:80:192.0.2.11 http://wiki.campus.example/page 2>&1)
info "   -> $out"
if [ "$out" = "301 https://wiki.campus.example/page" ]; then result OK "HTTP on wiki redirects to HTTPS (301)"; else result FAIL "HTTP redirect on wiki: $out"; fi

info "2. https://wiki.campus.example/ (VIP 192.0.2.11 port 443): TLS terminated on the LB, certificate checked against the testbed CA"
out=$($C curl -sS -v --max-time 5 --cacert "$CA" --resolve wiki.campus.example:443:192.0.2.11 https://wiki.campus.example/ 2>&1)
echo "$out" | grep -E '^\* +(subject|issuer):|SSL certificate verify|^backend=' | sed 's/^\* *//' | sed 's/^/       /'
if echo "$out" | grep -q 'subject: CN=wiki.campus.example' && echo "$out" | grep -q 'SSL certificate verify ok' && echo "$out" | grep -q '^backend=wiki'; then
  result OK "HTTPS on wiki: certificate CN=wiki.campus.example verified, answered by $(echo "$out" | grep -o '^backend=[^ ]*' | cut -d= -f2)"
else
  result FAIL "HTTPS on wiki"
fi

info "3. https://physik.campus.example/ (VIP 192.0.2.10, eight sites by SNI and Host, one shared certificate)"
out=$($C curl -sS -v --max-time 5 --cacert "$CA" --resolve physik.campus.example:443:192.0.2.10 https://physik.campus.example/ 2>&1)
echo "$out" | grep -E '^\* +subjectAltName:|SSL certificate verify|^backend=' | sed 's/^\* *//' | sed 's/^/       /'
if echo "$out" | grep -q 'SSL certificate verify ok' && echo "$out" | grep -q 'matched cert.s "physik.campus.example"' && echo "$out" | grep -q '^backend=typo3-web.*host=physik.campus.example'; then
  result OK "HTTPS on physik (SNI, Host): certificate verified, answered by $(echo "$out" | grep -o '^backend=[^ ]*' | cut -d= -f2)"
else
  result FAIL "HTTPS on physik"
fi

info "4. smtp.campus.example port 25 (VIP 192.0.2.20, TCP): the backend reads the client's address from a PROXY v2 header"
out=$($C bash -c 'exec 3<>/dev/tcp/192.0.2.20/25 && timeout 5 head -1 <&3 && echo QUIT >&3' 2>&1 | tr -d '\r')
info "   -> $out"
if echo "$out" | grep -q '^220 backend=mx[12] .*proxy-src=198.51.100.130:'; then
  result OK "SMTP: greeting from $(echo "$out" | grep -o 'backend=[^ ]*' | cut -d= -f2), PROXY source = the client 198.51.100.130"
else
  result FAIL "SMTP with PROXY protocol: $out"
fi

info "5. https://www.campus.example/ over IPv6 (VIP 2001:db8:10::10)"
out=$($C curl -sS -6 --max-time 5 --cacert "$CA" --resolve "www.campus.example:443:[2001:db8:10::10]" https://www.campus.example/ 2>&1)
info "   -> $out"
if echo "$out" | grep -q '^backend=typo3-web.*xff=2001:db8:c::2'; then
  result OK "IPv6 VIP: answered by $(echo "$out" | grep -o '^backend=[^ ]*' | cut -d= -f2), X-Forwarded-For = the client 2001:db8:c::2"
else
  result FAIL "IPv6 VIP: $out"
fi

info "6. 60 new connections to https://www.campus.example/ (VIP 192.0.2.10): spread over both LB nodes and the three typo3 backends"
$TESTBED load --count 60 --interval 10ms --host www.campus.example=192.0.2.10 https://www.campus.example/ > "$WORK/spread.txt" 2>&1
grep -E 'requests in|served through|answered by' "$WORK/spread.txt" | sed 's/^/       /'
if grep -q '60 ok, 0 failed' "$WORK/spread.txt" && grep -q 'lb1 [0-9]' "$WORK/spread.txt" && grep -q 'lb2 [0-9]' "$WORK/spread.txt"; then
  result OK "ECMP: $(grep 'served through' "$WORK/spread.txt" | sed 's/served through: *//'); backends: $(grep 'answered by' "$WORK/spread.txt" | sed 's/answered by: *//; s/\.campus\.example//g')"
else
  result FAIL "spread over both LB nodes"
fi

say "Failover: kill lb1's HAProxy for VIP 192.0.2.11 (SIGKILL to the unit's main PID) while the client keeps requesting"
info "the client makes a new HTTPS request every 20 ms for 8 s; a request whose connection is refused or reset"
info "before any answer is retried once 100 ms later (as browsers do); it counts as failed only if that fails too"
$TESTBED load --duration 8s --interval 20ms --retry-refused --host wiki.campus.example=192.0.2.11 https://wiki.campus.example/ > "$WORK/failover.txt" 2>&1 &
LOAD=$!
sleep 2
$TESTBED kill-haproxy --wait-back --timeout 20s lb1 192.0.2.11 > "$WORK/kill.txt" 2>&1
krc=$?
indent < "$WORK/kill.txt"
wait $LOAD
indent < "$WORK/failover.txt"
if [ $krc -eq 0 ]; then
  result OK "failover: $(grep -o 'gone from the route to [^ ]* [0-9.]* ms after the kill' "$WORK/kill.txt" | sed 's/gone from the route to [^ ]* /lb1 withdrawn /'), back $(grep -o 'again [0-9.]* s later' "$WORK/kill.txt" | sed 's/again //')"
else
  result FAIL "failover: route withdrawal and recovery"
fi
if grep -q ' 0 failed' "$WORK/failover.txt"; then
  result OK "requests during the failover: $(grep -o '[0-9]* requests' "$WORK/failover.txt"), 0 failed ($(head -1 "$WORK/failover.txt" | grep -o '[0-9]* retried'))"
else
  result FAIL "requests during the failover: $(head -1 "$WORK/failover.txt")"
fi

ELAPSED=$(( $(date +%s) - START ))
say "Summary"
printf '    %s\n' "${RESULTS[@]}"
if [ "$FAILED" = 0 ]; then
  info "everything shown worked, in ${ELAPSED}s"
else
  info "SOMETHING FAILED (see above), after ${ELAPSED}s; logs in $DIR/logs and: $TESTBED exec lb1 journalctl"
fi

if [ "$KEEP" = 1 ]; then
  say "The sandbox stays up (KEEP=1)"
  info "enter an LB node (its systemd, journal, lbctl):  $TESTBED exec lb1 bash   (or lb2)"
  info "   e.g. $TESTBED exec lb1 lbctl status;  $TESTBED exec lb1 journalctl -u lbctl-agent"
  info "the client, router, route reflector:             ip netns exec lbtb-client bash   (lbtb-router, lbtb-rr)"
  info "a backend:                                       ip netns exec lbtb-be1 bash   (lbtb-be1 ... lbtb-be18)"
  info "sandbox status, routes:                          $TESTBED status"
  info "key pair and bundle:                             $WORK"
  info "tear it down:                                    $TESTBED down; rm -rf $WORK"
fi
