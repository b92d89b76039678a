#!/usr/bin/env bash
# Live hostile-traffic test (issue 13): a real pushgate-proxy with a real Kamailio registrar
# behind it (deploy/kamailio/kamailio.cfg), on 127.0.0.1 with free ports, receives at least
# HOSTILE_COUNT (default 20,000) mutated SIP messages over UDP and TCP, built from real traffic:
#
#  1. capture: sipp phones REGISTER through the gateway (UDP and TCP), a sipp caller calls one of
#     them through Kamailio (INVITE, 100/180/200, ACK, BYE), every message logged (sipp
#     -trace_msg); Kamailio's location table gives the masqueraded contact (a pgw request URI);
#  2. hostile: mutate.py mutates these messages and the seed corpus of the sip_message fuzz
#     harness (tests/fuzz/sip_message/corpus) and sends them: phone side (every kind of request
#     and response) and backend side (INVITEs to the pgw URI, as Kamailio sends them); fixed
#     seed, HOSTILE_SEED=<n> replays another run (the seed is printed);
#  3. afterwards: the proxy is alive, every transaction drains (pushgate_proxy_transactions_in_flight
#     0 within HOSTILE_DRAIN_SECONDS; short fork/Timer C/transaction timers in the test config),
#     every call too (pushgate_proxy_calls_open 0 after its 32 s linger), then it answers a valid
#     REGISTER (relayed to Kamailio: 200), the mutations reached the
#     validation (pushgate_proxy_invalid_messages_total > 0), and a SIGTERM ends the proxy with
#     status 0 (under ASan: no leak report).
#
#   hostile_test.sh PROXY_BINARY
# Environment: HOSTILE_SEED, HOSTILE_COUNT, HOSTILE_RATE (messages per second, default 1000, 400
# for an ASan build; the kernel's drops on the proxy's socket are printed),
# KEEP_TMP=1 keeps the temporary directory (logs, captured messages, the last messages sent
# before a crash in $TMP/last_messages.txt).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
CFG=${KAMAILIO_CFG:-$ROOT/deploy/kamailio/kamailio.cfg}
PROXY=${1:-}
SEED=${HOSTILE_SEED:-1313}
COUNT=${HOSTILE_COUNT:-20000}
RATE=${HOSTILE_RATE:-1000}
# The ASan build (asan preset) is several times slower: a lower rate, so that the mutations reach
# its parser rather than the kernel's drop counter.
if [[ -z ${HOSTILE_RATE:-} && $(ldd "${1:-/dev/null}" 2>/dev/null || true) == *libasan* ]]; then
  RATE=400
fi
DRAIN_SECONDS=${HOSTILE_DRAIN_SECONDS:-30}

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -n $PROXY && -x $PROXY ]] || fail "usage: $0 PROXY_BINARY (pushgate-proxy not built: \"$PROXY\")"
for tool in kamailio kamcmd sipp ss curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (./dev setup installs it)"
done

# shellcheck source=tests/e2e/lib.sh
source "$HERE/../lib.sh"
use_tmp_dir pushgate-hostile-e2e

need_proxy_keys "$PROXY" sip.listen sip.backend sip.masquerade_secret sip.domains sip.t1 \
  sip.transaction_timeout sip.drain_timeout fork.call_timeout limits.timer_c \
  limits.rate_limit_requests limits.message_timeout limits.connection_idle_timeout \
  push.target admin.listen log.level

KPORT=$(port); PPORT=$(port); APORT=$(port); PHONE_PORT=$(port); TCP_PHONE_PORT=$(port)
CALLER_PORT=$(port); CHECK_PORT=$(port)
CTL="unix:$TMP/kamailio_ctl"
TOKEN=$(printf 'b0b0%.0s' {1..16})
CONTACT_PARAMS="pn-provider=apns;pn-prid=$TOKEN;pn-param=ABCD123456.org.example.phone.voip"

start_kamailio kamailio "$CFG" 64 8 -A "CTL_SOCKET=\"$CTL\"" -l "udp:127.0.0.1:$KPORT" \
  -l "tcp:127.0.0.1:$KPORT"
wait_listen u "$KPORT" kamailio

# Short timers: whatever the mutations leave open must end within seconds.
cat >"$TMP/proxy.toml" <<EOF
[sip]
listen = ["udp:127.0.0.1:$PPORT", "tcp:127.0.0.1:$PPORT"]
backend = "sip:127.0.0.1:$KPORT"
domains = ["*"]
masquerade_secret = "e2e-hostile-secret"
t1 = "100ms"
transaction_timeout = "3s"
drain_timeout = "1s"

[fork]
call_timeout = "2s"

[limits]
timer_c = "4s"
rate_limit_requests = 0  # every sender is 127.0.0.1: the mutations must reach the parser
message_timeout = "2s"
connection_idle_timeout = "5s"

[store]
kind = "memory"

[push]
target = ""

[admin]
listen = "127.0.0.1:$APORT"

[log]
level = "info"
EOF
start_proxy
wait_listen u "$PPORT" "pushgate-proxy (udp)"
wait_listen t "$PPORT" "pushgate-proxy (tcp)"
wait_listen t "$APORT" "pushgate-proxy admin endpoint"

dump_logs() {
  echo "---- pushgate-proxy log (tail)" >&2; tail -n 60 "$TMP/proxy.log" >&2 || true
  echo "---- kamailio log (tail)" >&2; tail -n 20 "$TMP/kamailio.log" >&2 || true
}
alive() { kill -0 "$PROXY_PID" 2>/dev/null; }
metric() {  # metric NAME: the sum of every series of NAME on /metrics (empty when unreachable)
  curl -sf "http://127.0.0.1:$APORT/metrics" |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $NF; f = 1} END {if (f) print s + 0}'
}

# 1. Capture real traffic.
phone_xml() {  # phone_xml USER PAUSE_MS: registers USER, then answers calls for PAUSE_MS
  cat <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="phone">
  <send retrans="500">
    <![CDATA[
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Phone $1" <sip:$1@example.org>;tag=[pid]reg
To: <sip:$1@example.org>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:$1@[local_ip]:[local_port];$CONTACT_PARAMS>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000000b0b01>"
Max-Forwards: 70
Expires: 600
User-Agent: pushgate-e2e-phone
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="$2"/>
</scenario>
EOF
}
phone_xml bob 6000 >"$TMP/phone.xml"
phone_xml carol 1 >"$TMP/tcp_phone.xml"
sipp -nostdin -sf "$TMP/phone.xml" -oocsf "$ROOT/tests/e2e/scenarios/answer.xml" -key user bob \
  -i 127.0.0.1 -p "$PHONE_PORT" -m 1 -t u1 -timeout 20s -trace_msg \
  -message_file "$TMP/capture_phone.log" -trace_err -error_file "$TMP/phone_err.log" \
  "127.0.0.1:$PPORT" >"$TMP/phone.out" 2>&1 &
PHONE_PID=$!
PIDS+=("$PHONE_PID")
sipp -nostdin -sf "$TMP/tcp_phone.xml" -i 127.0.0.1 \
  -p "$TCP_PHONE_PORT" -m 1 -t t1 -timeout 10s -timeout_error -trace_msg \
  -message_file "$TMP/capture_tcp_phone.log" "127.0.0.1:$PPORT" >"$TMP/tcp_phone.out" 2>&1 ||
  { dump_logs; fail "capture: the TCP phone's REGISTER through pushgate got no 200"; }
for _ in $(seq 1 50); do
  grep -q "^SIP/2.0 200" "$TMP/capture_phone.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "^SIP/2.0 200" "$TMP/capture_phone.log" ||
  { dump_logs; fail "capture: the UDP phone's REGISTER through pushgate got no 200"; }
sipp -nostdin -sf "$ROOT/tests/e2e/scenarios/caller.xml" -key ruri sip:bob@example.org \
  -i 127.0.0.1 -p "$CALLER_PORT" -m 1 -t u1 -timeout 15s -timeout_error -trace_msg \
  -message_file "$TMP/capture_caller.log" -trace_err -error_file "$TMP/caller_err.log" \
  "127.0.0.1:$KPORT" >"$TMP/caller.out" 2>&1 ||
  { dump_logs; cat "$TMP/caller_err.log" >&2 2>/dev/null; fail "capture: the call through Kamailio and pushgate to the phone did not complete"; }
wait "$PHONE_PID" || true
kamcmd -s "$CTL" ul.dump >"$TMP/uldump.txt" 2>&1 || { cat "$TMP/uldump.txt" >&2; fail "kamcmd ul.dump failed"; }
PGW_URI=$(sed -n 's/^[[:space:]]*Address: \(sip:bob@.*pgw=.*\)$/\1/p' "$TMP/uldump.txt" | head -n 1)
[[ -n $PGW_URI ]] || { cat "$TMP/uldump.txt" >&2; fail "capture: no masqueraded contact of bob in Kamailio's location table"; }

# 2. Hostile traffic.
before_invalid=$(metric pushgate_proxy_invalid_messages_total)
echo "hostile: seed $SEED (HOSTILE_SEED=$SEED replays this run), $COUNT messages at <= $RATE/s" >&2
python3 "$HERE/mutate.py" --seed "$SEED" --count "$COUNT" --rate "$RATE" \
  --target "127.0.0.1:$PPORT" --pgw-uri "$PGW_URI" --pid "$PROXY_PID" \
  --last "$TMP/last_messages.txt" \
  --capture "$TMP/capture_phone.log" "$TMP/capture_tcp_phone.log" "$TMP/capture_caller.log" \
  --seeds "$ROOT"/tests/fuzz/sip_message/corpus/* >"$TMP/mutate.out" 2>&1 ||
  { cat "$TMP/mutate.out" >&2; dump_logs; KEEP_TMP=1; fail "hostile: mutate.py failed (the proxy died? the last messages sent are in $TMP/last_messages.txt, seed $SEED)"; }
cat "$TMP/mutate.out" >&2
# Datagrams the kernel dropped on the proxy's UDP socket (its receive buffer was full).
drops=$(awk -v port="$(printf ':%04X' "$PPORT")" \
  'NR > 1 && substr($2, length($2) - 4) == port {d += $NF} END {print d + 0}' /proc/net/udp)
echo "hostile: $drops datagrams dropped by the kernel on the proxy's UDP socket" >&2
alive || { dump_logs; KEEP_TMP=1; fail "pushgate-proxy died under hostile traffic (seed $SEED; last messages: $TMP/last_messages.txt)"; }

# 3a. Every transaction drains.
inflight=""
for _ in $(seq 1 $((DRAIN_SECONDS * 5))); do
  inflight=$(metric pushgate_proxy_transactions_in_flight) || true
  [[ $inflight == 0 ]] && break
  sleep 0.2
done
[[ $inflight == 0 ]] ||
  { dump_logs; fail "pushgate_proxy_transactions_in_flight is ${inflight:-absent} $DRAIN_SECONDS s after the hostile traffic (expected 0)"; }
# A finished call lingers 32 s (64*T1 of RFC 3261's default T1, for late retransmissions) before
# it is freed: every call must be gone by then.
calls=""
for _ in $(seq 1 $(((32 + DRAIN_SECONDS) * 5))); do
  calls=$(metric pushgate_proxy_calls_open) || true
  [[ $calls == 0 ]] && break
  sleep 0.2
done
[[ $calls == 0 ]] ||
  { dump_logs; fail "pushgate_proxy_calls_open is ${calls:-absent} $((32 + DRAIN_SECONDS)) s after the hostile traffic (expected 0)"; }

# 3b. Then a valid REGISTER gets its 200 from Kamailio through the gateway.
cat >"$TMP/check.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="check">
  <send retrans="500">
    <![CDATA[
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:dave@example.org>;tag=[pid]chk
To: <sip:dave@example.org>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:dave@[local_ip]:[local_port];$CONTACT_PARAMS>
Max-Forwards: 70
Expires: 600
Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
</scenario>
EOF
sipp -nostdin -sf "$TMP/check.xml" -i 127.0.0.1 -p "$CHECK_PORT" -m 1 -t u1 -timeout 10s \
  -timeout_error -trace_err -error_file "$TMP/check_err.log" "127.0.0.1:$PPORT" \
  >"$TMP/check.out" 2>&1 ||
  { cat "$TMP/check_err.log" >&2 2>/dev/null; dump_logs; fail "after the hostile traffic a valid REGISTER got no 200 through pushgate"; }

# 3c. The mutations reached the validation.
after_invalid=$(metric pushgate_proxy_invalid_messages_total)
invalid=$((${after_invalid:-0} - ${before_invalid:-0}))
((invalid > 0)) || fail "no message was counted invalid (pushgate_proxy_invalid_messages_total): did the mutations reach the proxy?"

curl -sf "http://127.0.0.1:$APORT/metrics" | grep -E '^pushgate_proxy_(invalid_messages|rejected_requests|forwarded_requests|timer_c|responses)_total' >&2 || true

# 3d. A clean stop (under ASan: LeakSanitizer runs at exit and fails the exit status).
alive || { dump_logs; fail "pushgate-proxy died after the hostile traffic"; }
kill -TERM "$PROXY_PID"
rc=0
wait "$PROXY_PID" || rc=$?
PIDS=("${PIDS[@]/$PROXY_PID/}")
if ((rc != 0)) || grep -qE 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$TMP/proxy.log"; then
  grep -A 40 -E 'Sanitizer|runtime error:' "$TMP/proxy.log" | head -n 80 >&2 || true
  dump_logs
  fail "pushgate-proxy exited with status $rc on SIGTERM after the hostile traffic (sanitizer report above, if any)"
fi
echo "PASS: $COUNT mutated messages (seed $SEED; $invalid counted invalid): pushgate-proxy alive, valid REGISTER answered 200, no transaction in flight, clean exit"
