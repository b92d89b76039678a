#!/usr/bin/env bash
# The whole stack in containers (issue 5's end-to-end test):
#  1. builds the images (scripts/build-images.sh; STACK_SKIP_BUILD=1 reuses existing ones);
#  2. starts deploy/docker-compose.yml with podman-compose, demo services included, the pusher
#     scaled to 2, waits until every container's HEALTHCHECK passes (gRPC health for both
#     pushers) and until every service name the containers use resolves inside them;
#  3. a push sent straight to the pusher service reaches the emulator (credentials, TLS, wiring);
#  4. sipp phones REGISTER through the proxy with push parameters: 200, and Kamailio's location
#     table holds only masqueraded contacts;
#  5. the phones go silent; a sipp caller INVITEs each of them through Kamailio; pushgate sends
#     a push per call within the proxy's push deadline: the emulator receives one for every
#     phone's token, the proxy counts no failed push RPC, and the pushes are spread over both
#     pusher replicas (each sent at least one; together exactly one per call);
#  6. stops the stack and removes its containers, network, volume and temporary files (also
#     those of earlier runs that were killed before they could clean up).
# Exit 77 (ctest SKIP_RETURN_CODE) with the reason when podman cannot run here.
#
# Container churn and name lookups (podman 4.3 / netavark 1.4 here): the network's Linux bridge
# takes the lowest MAC address of its ports unless one is set, so whenever a container joins
# with a lower (random) veth MAC the gateway's MAC changes. Containers that had cached the old
# one lose every packet to the gateway, DNS (aardvark-dns at the gateway address) included,
# until their ARP entry is renewed: 40 to 56 s measured here, which made the pushers' first
# name lookups and first APNs connections miss the push deadline. The test therefore pins the
# bridge's MAC as soon as the bridge exists (docs/deploy.md has the same step for podman
# deployments), and runs every sipp in ONE tester container that joins the network before
# the stack starts (aardvark-dns also drops an odd query while it reloads for a joining
# container), so no container joins or leaves while calls are pushed.
#
# Environment: STACK_SKIP_BUILD=1, STORE_KIND=memory (proxy without Redis), STACK_KEEP=1 (leave the stack up for debugging),
#              STACK_PHONES (default 6), STACK_UNTIL=register (stop after step 4), IMAGE_PREFIX/IMAGE_TAG as for build-images.sh,
#              STACK_LOG_DIR (default /tmp): on failure every container's full log is saved in
#              $STACK_LOG_DIR/pushgate-stack-logs-<project>/ (kept).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PHONES=${STACK_PHONES:-6}
((PHONES >= 1 && PHONES <= 9)) || { echo "STACK_PHONES must be 1..9" >&2; exit 2; }
PREFIX=${IMAGE_PREFIX:-localhost/}
TAG=${IMAGE_TAG:-latest}
PROJ=pgstack$$
NET=${PROJ}_default

skip() { echo "SKIP: $*"; exit 77; }
log() { echo "[stack] $*"; }
LOG_DIR=${STACK_LOG_DIR:-/tmp}
fail() {
  echo "FAIL: $*" >&2
  if [[ -n ${PROJ:-} ]] && command -v podman >/dev/null; then
    local dir="$LOG_DIR/pushgate-stack-logs-$PROJ" c
    mkdir -p "$dir"
    for c in $(podman ps -a --filter "name=^${PROJ}_" --format '{{.Names}}' 2>/dev/null); do
      podman logs "$c" >"$dir/$c.log" 2>&1 || true
      echo "----- logs of $c (last 30 lines; all of it in $dir/$c.log)" >&2
      tail -n 30 "$dir/$c.log" >&2
    done
    if [[ -d ${TMP:-} ]]; then cp -r "$TMP"/*.out "$TMP"/*.json "$TMP"/*.txt "$TMP/sipp" "$dir/" 2>/dev/null || true; fi
    echo "FAIL: $* (container logs and test files: $dir)" >&2
  fi
  exit 1
}

[[ $(id -u) -eq 0 ]] || skip "the stack test runs rootful podman (run as root)"
command -v podman >/dev/null || skip "podman is not installed (./dev setup installs it)"
command -v podman-compose >/dev/null || skip "podman-compose is not installed (./dev setup installs it)"
# netavark (podman's network backend) sets up the compose network's NAT with iptables; without
# it every container on a network fails to start, after the image build.
command -v iptables >/dev/null || skip "iptables is not installed: podman's network backend needs it (./dev setup installs it)"
podman info >/dev/null 2>&1 || skip "podman does not work here: $(podman info 2>&1 | tail -1)"

# running_stack_test PID: PID is a stack test running now. One read of its command line, which
# goes away (no error printed) when the process exits meanwhile.
running_stack_test() {
  local cmdline
  cmdline=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 1
  [[ $cmdline == *stack_test.sh* ]]
}

# Leftovers of earlier runs that were killed before their cleanup ran (a ctest timeout kills
# without a trap): project pgstack<PID> whose PID is no longer a running stack test.
sweep_stale() {
  local name pid
  for name in $({
    podman ps -a --format '{{.Names}}'
    podman network ls --format '{{.Name}}'
    podman volume ls --format '{{.Name}}'
  } 2>/dev/null | grep -o '^pgstack[0-9]*_' | sort -u); do
    name=${name%_}
    pid=${name#pgstack}
    if running_stack_test "$pid"; then
      continue  # a stack test running now (another clone)
    fi
    log "removing leftovers of an earlier run: $name"
    podman ps -a --format '{{.Names}}' | grep "^${name}_" | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
    podman network rm -f "${name}_default" >/dev/null 2>&1 || true
    podman volume ls --format '{{.Name}}' | grep "^${name}_" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  done
  for name in /tmp/pushgate-stack-pgstack*; do
    [[ -d $name ]] || continue
    pid=${name#/tmp/pushgate-stack-pgstack}
    pid=${pid%%.*}
    running_stack_test "$pid" && continue
    rm -rf "$name"
  done
}
sweep_stale

if [[ ${STACK_SKIP_BUILD:-0} != 1 ]]; then
  log "building images"
  t0=$SECONDS
  nice "$ROOT/scripts/build-images.sh" proxy pusher emulator redis kamailio sipp ||
    fail "scripts/build-images.sh failed"
  log "images built in $((SECONDS - t0)) s"
fi
podman run --rm --entrypoint true "${PREFIX}pushgate-sipp:${TAG}" >/dev/null 2>&1 ||
  skip "podman cannot run a container here: $(podman run --rm --entrypoint true "${PREFIX}pushgate-sipp:${TAG}" 2>&1 | tail -1)"

TMP=$(mktemp -d "/tmp/pushgate-stack-$PROJ.XXXXXX")
cp -r "$ROOT/deploy" "$TMP/deploy"
rm -rf "$TMP/deploy/secrets"/*
"$ROOT/deploy/gen-demo-secrets.sh" "$TMP/deploy/secrets" >/dev/null
mkdir -p "$TMP/sipp"

compose() {
  (cd "$TMP/deploy" &&
    PUSHER_REPLICAS=2 STORE_KIND=${STORE_KIND:-redis} SIP_BIND=127.0.0.1 SIP_PORT=$SIP_PORT KAMAILIO_PORT=$KAMAILIO_PORT \
      IMAGE_PREFIX=$PREFIX IMAGE_TAG=$TAG podman-compose -p "$PROJ" -f docker-compose.yml "$@")
}
TESTER=${PROJ}_tester
cleanup() {
  if [[ ${STACK_KEEP:-0} == 1 ]]; then
    log "STACK_KEEP=1: stack $PROJ left running (the next run removes it); files in $TMP"
    return
  fi
  compose down -t 15 >/dev/null 2>&1 || true
  podman rm -f -t 0 "$TESTER" >/dev/null 2>&1 || true
  podman volume rm -f "${PROJ}_redis-data" >/dev/null 2>&1 || true
  podman network rm -f "$NET" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    ss -Hlnu "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
  fail "no free port"
}
SIP_PORT=$(free_port)
KAMAILIO_PORT=$(free_port)

# --- 2. up, scaled, healthy, names resolvable --------------------------------------------------
# The network and the tester container first (see the header: no container joins or leaves the
# network once the stack runs). podman-compose uses an existing network of the project's name.
podman network create --label "io.podman.compose.project=$PROJ" \
  --label "com.docker.compose.project=$PROJ" "$NET" >/dev/null || fail "podman network create $NET failed"
podman run -d --name "$TESTER" --network "$NET" -v "$TMP/sipp:/scenarios" \
  --entrypoint sleep "${PREFIX}pushgate-sipp:${TAG}" infinity >/dev/null 2>"$TMP/tester.out" ||
  { cat "$TMP/tester.out" >&2; fail "the tester container (sipp) did not start"; }
# The bridge exists now: pin its MAC address (see the header).
BRIDGE=$(podman network inspect "$NET" --format '{{.NetworkInterface}}')
[[ -n $BRIDGE && -e /sys/class/net/$BRIDGE/address ]] || fail "no bridge interface for network $NET"
command -v ip >/dev/null || fail "ip (iproute2) is needed to pin the bridge's MAC address"
ip link set dev "$BRIDGE" address "$(cat "/sys/class/net/$BRIDGE/address")" ||
  fail "cannot set the MAC address of bridge $BRIDGE"
log "starting stack $PROJ (pusher x2, demo services)"
t_up=$SECONDS
compose up -d >"$TMP/up.log" 2>&1 || { cat "$TMP/up.log" >&2; fail "podman-compose up failed"; }
CONTAINERS=("${PROJ}_redis_1" "${PROJ}_pusher_1" "${PROJ}_pusher_2" "${PROJ}_emulator_1"
  "${PROJ}_kamailio_1" "${PROJ}_proxy_1")
for c in "${CONTAINERS[@]}"; do
  healthy=0
  for _ in $(seq 1 60); do
    if podman healthcheck run "$c" >/dev/null 2>&1; then healthy=1; break; fi
    sleep 1
  done
  ((healthy)) || fail "container $c never became healthy (60 s): $(podman ps -a --filter name="^$c\$" --format '{{.Status}}')"
done
log "all ${#CONTAINERS[@]} containers healthy after $((SECONDS - t_up)) s (pushers: gRPC health SERVING)"

# Every service name a container uses resolves inside it (glibc, aardvark-dns first): the
# pushers reach the emulator, the proxy every pusher replica, Kamailio and Redis, Kamailio the
# proxy, the tester the proxy and Kamailio.
addresses() {  # addresses CONTAINER NAME: distinct IPv4 addresses NAME resolves to in CONTAINER
  podman exec "$1" getent ahostsv4 "$2" 2>/dev/null | awk '{ print $1 }' | sort -u | wc -l
}
NAMES=("${PROJ}_pusher_1 emulator 1" "${PROJ}_pusher_2 emulator 1" "${PROJ}_proxy_1 pusher 2"
  "${PROJ}_proxy_1 kamailio 1" "${PROJ}_proxy_1 redis 1" "${PROJ}_kamailio_1 proxy 1"
  "$TESTER proxy 1" "$TESTER kamailio 1")
t_dns=$SECONDS
for entry in "${NAMES[@]}"; do
  read -r c name want <<<"$entry"
  t_name=$SECONDS
  until [[ $(addresses "$c" "$name") -eq $want ]]; do
    ((SECONDS - t_dns < 45)) ||
      fail "in $c, \"$name\" does not resolve to $want address(es) (45 s; got $(addresses "$c" "$name"))"
    sleep 0.5
  done
  ((SECONDS - t_name < 3)) || log "\"$name\" resolved in ${c#"${PROJ}_"} after $((SECONDS - t_name)) s"
done
log "service names resolve in every container (after $((SECONDS - t_dns)) s)"

get() {  # get CONTAINER PORT PATH: HTTP body from inside the container
  podman exec "$1" pushgate-healthz "$2" "$3" --print
}
http2_requests() {  # APNs requests one pusher replica sent and got answered (OAuth excluded)
  get "$1" 9101 /metrics |
    awk '/^pushgate_http2_requests_total\{pool="apns/ && /result="ok"/ { s += $NF } END { print s + 0 }'
}
push_rpc_errors() {  # push RPCs from the proxy to the pushers that failed (any gRPC code)
  get "${PROJ}_proxy_1" 9090 /metrics |
    awk '/^pushgate_proxy_push_rpc_errors_total/ { s += $NF } END { print s + 0 }'
}

# --- 3. a push straight through the pusher service reaches the emulator ------------------------
# pushgate-push from inside a pusher container (podman exec: no container joins the network);
# the API key comes on stdin.
TOKEN0=$(printf 'f%.0s' $(seq 1 64))
podman exec -i "${PROJ}_pusher_1" pushgate-push --target pusher:50061 --api-key-file /dev/stdin \
  --provider apns --param DEMOTEAM01.org.pushgate.demo.voip --token "$TOKEN0" --kind voip \
  --call-id stack-test-direct --timeout 30s <"$TMP/deploy/secrets/pusher_client_api_key" \
  >"$TMP/push.out" 2>&1 ||
  { cat "$TMP/push.out" >&2; fail "pushgate-push through the pusher service was not accepted"; }
get "${PROJ}_emulator_1" 8080 /received >"$TMP/received0.json" ||
  fail "emulator control GET /received failed"
grep -q "$TOKEN0" "$TMP/received0.json" || { cat "$TMP/received0.json" >&2; fail "the direct push never reached the emulator"; }
log "direct push reached the emulator"

# --- 4. phones register through the proxy ------------------------------------------------------
# Tokens: 63 hex digits + the phone number (1..9).
TOKEN_PREFIX=$(printf 'a%.0s' $(seq 1 63))
cat >"$TMP/sipp/phones.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="phones register with push parameters, then go silent">
  <send retrans="500">
    <![CDATA[
REGISTER sip:demo.pushgate.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:phone[call_number]@demo.pushgate.org>;tag=[pid]r[call_number]
To: <sip:phone[call_number]@demo.pushgate.org>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:phone[call_number]@[local_ip]:[local_port];pn-provider=apns;pn-prid=${TOKEN_PREFIX}[call_number];pn-param=DEMOTEAM01.org.pushgate.demo.voip>;+sip.instance="<urn:uuid:00000000-0000-4000-8000-00000000000[call_number]>"
Max-Forwards: 70
Expires: 600
Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="pn-prid=${TOKEN_PREFIX}" search_in="hdr" header="Contact:" check_it="true" assign_to="c"/>
    </action>
  </recv>
  <Reference variables="c"/>
</scenario>
EOF
sipp_run() {  # sipp_run NAME ARGS...: sipp in the tester container
  local name=$1
  shift
  # timeout: sipp's own -timeout does not end a run whose calls are stuck; cleanup removes the
  # container if the client is killed.
  timeout --kill-after=10 150 podman exec "$TESTER" sipp -nostdin -trace_err -error_file "/scenarios/$name.err" "$@"
}
# Wait until the proxy reaches the backend: an OPTIONS for an unknown user, relayed by the proxy,
# comes back as Kamailio's 404. Right after start-up podman's DNS may not know "kamailio" yet and
# the proxy's resolver would keep that answer for a while: registering before would time out.
cat >"$TMP/sipp/probe.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="backend reachable through the proxy">
  <send retrans="500">
    <![CDATA[
OPTIONS sip:probe@demo.pushgate.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:probe@demo.pushgate.org>;tag=[pid]p[call_number]
To: <sip:probe@demo.pushgate.org>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="404"/>
</scenario>
EOF
for attempt in $(seq 1 20); do
  sipp_run probe -sf /scenarios/probe.xml -m 1 -timeout 4s -timeout_error proxy:5060 \
    >"$TMP/probe.out" 2>&1 && break
  ((attempt < 20)) || fail "the proxy never relayed an OPTIONS to Kamailio and back (20 probes)"
  sleep 1
done
log "the proxy reaches the backend (after $attempt probe(s))"
# The phones use port 5070 of the tester (the caller 5060).
sipp_run phones -sf /scenarios/phones.xml -m "$PHONES" -r 10 -timeout 30s -timeout_error -p 5070 \
  proxy:5060 >"$TMP/phones.out" 2>&1 ||
  { { cat "$TMP/sipp/phones.err" 2>/dev/null; echo; } >&2 || true; fail "phones did not all get a 200 for REGISTER through the proxy (listing their own contact)"; }
podman exec "${PROJ}_kamailio_1" kamcmd -s unix:/run/kamailio/kamailio_ctl ul.dump >"$TMP/uldump.txt" ||
  fail "kamcmd ul.dump in the Kamailio container failed"
registered=$(grep -c 'AoR: phone' "$TMP/uldump.txt" || true)
[[ $registered -eq $PHONES ]] || { cat "$TMP/uldump.txt" >&2; fail "Kamailio holds $registered of $PHONES phones"; }
if grep -q 'pn-prid\|pn-provider' "$TMP/uldump.txt"; then
  cat "$TMP/uldump.txt" >&2
  fail "push parameters reached the backend registrar"
fi
log "$PHONES phones registered; the backend holds masqueraded contacts only"

if [[ ${STACK_UNTIL:-} == register ]]; then
  echo "PASS: compose stack up to registrations (STACK_UNTIL=register: calls and pushes not run)"
  exit 0
fi

# --- 5. calls through Kamailio: one push per silent phone, over both pushers --------------------
cat >"$TMP/sipp/caller.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller: INVITE through the backend, give up after 4 s">
  <send retrans="500">
    <![CDATA[
INVITE sip:phone[call_number]@demo.pushgate.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller@demo.pushgate.org>;tag=[pid]c[call_number]
To: <sip:phone[call_number]@demo.pushgate.org>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="100"/>
  <pause milliseconds="4000"/>
  <send>
    <![CDATA[
CANCEL sip:phone[call_number]@demo.pushgate.org SIP/2.0
[last_Via:]
From: <sip:caller@demo.pushgate.org>;tag=[pid]c[call_number]
To: <sip:phone[call_number]@demo.pushgate.org>
Call-ID: [call_id]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="10000"/>
  <recv response="487" timeout="10000"/>
  <send>
    <![CDATA[
ACK sip:phone[call_number]@demo.pushgate.org SIP/2.0
[last_Via:]
From: <sip:caller@demo.pushgate.org>;tag=[pid]c[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
</scenario>
EOF
# The phones go silent like sleeping phones: a socket holds their port and never answers, so the
# INVITEs the proxy relays to them vanish and only the push can reach them.
podman exec -d "$TESTER" perl -MIO::Socket::INET -e \
  'my $s = IO::Socket::INET->new(LocalPort => 5070, Proto => "udp") or die "bind 5070: $!";
   open(my $f, ">", "/tmp/phones-silent") or die; close($f); sleep' >/dev/null ||
  fail "cannot start the silent phone socket in the tester"
for _ in $(seq 1 50); do
  podman exec "$TESTER" test -e /tmp/phones-silent && break
  sleep 0.2
done
podman exec "$TESTER" test -e /tmp/phones-silent || fail "the silent phone socket never bound port 5070"
errors_before=$(push_rpc_errors)
before1=$(http2_requests "${PROJ}_pusher_1")
before2=$(http2_requests "${PROJ}_pusher_2")
# -nd: provisional answers (110 Push sent, 180) between 100 and the CANCEL are not errors.
sipp_run caller -nd -sf /scenarios/caller.xml -m "$PHONES" -r 2 -l "$PHONES" -timeout 60s \
  kamailio:5060 >"$TMP/caller.out" 2>&1 ||
  { { cat "$TMP/sipp/caller.err" 2>/dev/null; echo; } >&2 || true; fail "calls through Kamailio did not complete as INVITE/CANCEL/487"; }

# Every phone's push reaches the emulator: the proxy sends them at the INVITE and lets each run
# for its push deadline (deploy/config/proxy.toml [push] timeout), CANCEL or not.
PUSH_DEADLINE=$(awk -F'"' '/^\[push\]/ { p = 1 } p && /^timeout *=/ { print $2; exit }' "$ROOT/deploy/config/proxy.toml")
[[ $PUSH_DEADLINE =~ ^([0-9]+)s$ ]] || fail "cannot read [push] timeout (\"<N>s\") from deploy/config/proxy.toml"
wait_s=$((BASH_REMATCH[1] + 5))
t_push=$SECONDS
while :; do
  get "${PROJ}_emulator_1" 8080 /received >"$TMP/received.json" || fail "emulator GET /received failed"
  missing=()
  for i in $(seq 1 "$PHONES"); do
    grep -q "${TOKEN_PREFIX}$i" "$TMP/received.json" || missing+=("phone$i")
  done
  ((${#missing[@]} == 0)) && break
  ((SECONDS - t_push < wait_s)) ||
    fail "no push reached the emulator for: ${missing[*]} (waited ${wait_s} s after the calls: push deadline $PUSH_DEADLINE + 5 s)"
  sleep 0.5
done
errors=$(($(push_rpc_errors) - errors_before))
((errors == 0)) || fail "the proxy counted $errors failed push RPC(s) to the pushers (pushgate_proxy_push_rpc_errors_total)"
after1=$(http2_requests "${PROJ}_pusher_1")
after2=$(http2_requests "${PROJ}_pusher_2")
d1=$((after1 - before1))
d2=$((after2 - before2))
log "pushes per pusher replica: pusher_1=$d1 pusher_2=$d2"
# Order does not matter (round robin may start with either replica); each must have sent some,
# and together one per call.
((d1 > 0 && d2 > 0)) || fail "pushes were not spread over both pushers (pusher_1=$d1, pusher_2=$d2)"
((d1 + d2 == PHONES)) || fail "the pushers sent $((d1 + d2)) APNs pushes for $PHONES calls (pusher_1=$d1, pusher_2=$d2)"

echo "PASS: compose stack: $PHONES phones registered, $PHONES calls pushed through 2 pushers ($d1 + $d2) in $SECONDS s"
