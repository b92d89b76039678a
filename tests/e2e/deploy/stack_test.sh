#!/usr/bin/env bash
# The whole stack in containers (issue 5's end-to-end test):
#  1. builds the images (scripts/build-images.sh; STACK_SKIP_BUILD=1 reuses existing ones);
#  2. starts deploy/docker-compose.yml with podman-compose, demo services included, the pusher
#     scaled to 2, and waits until every container's HEALTHCHECK passes;
#  3. a push sent straight to the pusher service reaches the emulator (credentials, TLS, wiring);
#  4. sipp phones (in a container on the stack's network) REGISTER through the proxy with push
#     parameters: 200, and Kamailio's location table holds only masqueraded contacts;
#  5. the phones go silent; a sipp caller INVITEs each of them through Kamailio; pushgate sends
#     a push per call: the emulator receives one for every phone's token, and both pusher
#     replicas sent some (their HTTP/2 request counters);
#  6. stops the stack and removes its containers, network, volume and temporary files.
# Exit 77 (ctest SKIP_RETURN_CODE) with the reason when podman cannot run here.
#
# Environment: STACK_SKIP_BUILD=1, STORE_KIND=memory (proxy without Redis), STACK_KEEP=1 (leave the stack up for debugging),
#              STACK_PHONES (default 6), STACK_UNTIL=register (stop after step 4), IMAGE_PREFIX/IMAGE_TAG as for build-images.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PHONES=${STACK_PHONES:-6}
((PHONES >= 1 && PHONES <= 9)) || { echo "STACK_PHONES must be 1..9" >&2; exit 2; }
PREFIX=${IMAGE_PREFIX:-localhost/}
TAG=${IMAGE_TAG:-latest}
PROJ=pgstack$$
NET=${PROJ}_default

skip() { echo "SKIP: $*"; exit 77; }
fail() {
  echo "FAIL: $*" >&2
  if [[ -n ${PROJ:-} ]] && command -v podman >/dev/null; then
    for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJ" --format '{{.Names}}' 2>/dev/null); do
      echo "----- logs of $c (last 30 lines)" >&2
      podman logs --tail 30 "$c" >&2 2>&1 || true
    done
  fi
  exit 1
}
log() { echo "[stack] $*"; }

[[ $(id -u) -eq 0 ]] || skip "the stack test runs rootful podman (run as root)"
command -v podman >/dev/null || skip "podman is not installed (./dev images installs it)"
command -v podman-compose >/dev/null || skip "podman-compose is not installed"

if [[ ${STACK_SKIP_BUILD:-0} != 1 ]]; then
  log "building images"
  "$ROOT/scripts/build-images.sh" proxy pusher emulator redis kamailio sipp ||
    fail "scripts/build-images.sh failed"
fi
podman run --rm --entrypoint true "${PREFIX}pushgate-sipp:${TAG}" >/dev/null 2>&1 ||
  skip "podman cannot run a container here: $(podman run --rm --entrypoint true "${PREFIX}pushgate-sipp:${TAG}" 2>&1 | tail -1)"

TMP=$(mktemp -d /tmp/pushgate-stack.XXXXXX)
cp -r "$ROOT/deploy" "$TMP/deploy"
rm -rf "$TMP/deploy/secrets"/*
"$ROOT/deploy/gen-demo-secrets.sh" "$TMP/deploy/secrets" >/dev/null

compose() {
  (cd "$TMP/deploy" &&
    PUSHER_REPLICAS=2 STORE_KIND=${STORE_KIND:-redis} SIP_BIND=127.0.0.1 SIP_PORT=$SIP_PORT KAMAILIO_PORT=$KAMAILIO_PORT \
      IMAGE_PREFIX=$PREFIX IMAGE_TAG=$TAG podman-compose -p "$PROJ" -f docker-compose.yml "$@")
}
cleanup() {
  if [[ ${STACK_KEEP:-0} == 1 ]]; then
    log "STACK_KEEP=1: stack $PROJ left running; files in $TMP"
    return
  fi
  compose down -t 15 >/dev/null 2>&1 || true
  podman rm -f -t 0 "${PROJ}_sipp_phones" "${PROJ}_sipp_caller" "${PROJ}_push" >/dev/null 2>&1 || true
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

# --- 2. up, scaled, healthy -------------------------------------------------------------------
log "starting stack $PROJ (pusher x2, demo services)"
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
log "all ${#CONTAINERS[@]} containers healthy"

get() {  # get CONTAINER PORT PATH: HTTP body from inside the container
  podman exec "$1" pushgate-healthz "$2" "$3" --print
}
http2_requests() {  # APNs requests one pusher replica sent and got answered (OAuth excluded)
  get "$1" 9101 /metrics |
    awk '/^pushgate_http2_requests_total\{pool="apns/ && /result="ok"/ { s += $NF } END { print s + 0 }'
}

# --- 3. a push straight through one pusher reaches the emulator ---------------------------------
TOKEN0=$(printf 'f%.0s' $(seq 1 64))
podman run --rm --name "${PROJ}_push" --network "$NET" \
  -v "$TMP/deploy/secrets/pusher_client_api_key:/run/secrets/pusher_client_api_key:ro" \
  --entrypoint pushgate-push "${PREFIX}pushgate-pusher:${TAG}" \
  --target pusher:50061 --api-key-file /run/secrets/pusher_client_api_key \
  --provider apns --param DEMOTEAM01.org.pushgate.demo.voip --token "$TOKEN0" --kind voip \
  --call-id stack-test-direct --timeout 30s >"$TMP/push.out" 2>&1 ||
  { cat "$TMP/push.out" >&2; fail "pushgate-push through the pusher service was not accepted"; }
get "${PROJ}_emulator_1" 8080 /received >"$TMP/received0.json" ||
  fail "emulator control GET /received failed"
grep -q "$TOKEN0" "$TMP/received0.json" || { cat "$TMP/received0.json" >&2; fail "the direct push never reached the emulator"; }
log "direct push reached the emulator"

# --- 4. phones register through the proxy ------------------------------------------------------
# Tokens: 63 hex digits + the phone number (1..9).
TOKEN_PREFIX=$(printf 'a%.0s' $(seq 1 63))
mkdir -p "$TMP/sipp"
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
sipp_run() {  # sipp_run NAME ARGS...: sipp in a container on the stack's network
  local name=$1
  shift
  # timeout: sipp's own -timeout does not end a run whose calls are stuck; cleanup removes the
  # container if the client is killed.
  timeout --kill-after=10 150 podman run --rm --name "${PROJ}_sipp_$name" --network "$NET" -v "$TMP/sipp:/scenarios" \
    "${PREFIX}pushgate-sipp:${TAG}" -nostdin -trace_err -error_file "/scenarios/$name.err" "$@"
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
sipp_run phones -sf /scenarios/phones.xml -m "$PHONES" -r 10 -timeout 30s -timeout_error \
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
before1=$(http2_requests "${PROJ}_pusher_1")
before2=$(http2_requests "${PROJ}_pusher_2")
# -nd: provisional answers (110 Push sent, 180) between 100 and the CANCEL are not errors.
sipp_run caller -nd -sf /scenarios/caller.xml -m "$PHONES" -r 2 -l "$PHONES" -timeout 60s \
  kamailio:5060 >"$TMP/caller.out" 2>&1 ||
  { { cat "$TMP/sipp/caller.err" 2>/dev/null; echo; } >&2 || true; fail "calls through Kamailio did not complete as INVITE/CANCEL/487"; }

get "${PROJ}_emulator_1" 8080 /received >"$TMP/received.json" || fail "emulator GET /received failed"
missing=()
for i in $(seq 1 "$PHONES"); do
  grep -q "${TOKEN_PREFIX}$i" "$TMP/received.json" || missing+=("phone$i")
done
((${#missing[@]} == 0)) || fail "no push reached the emulator for: ${missing[*]}"
after1=$(http2_requests "${PROJ}_pusher_1")
after2=$(http2_requests "${PROJ}_pusher_2")
d1=$((after1 - before1))
d2=$((after2 - before2))
log "pushes per pusher replica: pusher_1=$d1 pusher_2=$d2"
((d1 > 0 && d2 > 0)) || fail "pushes were not spread over both pushers (pusher_1=$d1, pusher_2=$d2)"

echo "PASS: compose stack: $PHONES phones registered, $PHONES calls pushed through 2 pushers"
