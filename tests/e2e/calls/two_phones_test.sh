#!/usr/bin/env bash
# Two phones of one user, end to end (issue 14, part 1): both register through pushgate-proxy to
# Kamailio, which then holds two masqueraded contacts for bob and forks a call to both. Each
# phone must get the call exactly once (one INVITE), each token one push, and the phone that
# answers no CANCEL (no "missed call" on the phone that took the call); the other phone gets
# one CANCEL. Before the fix every gateway INVITE went to both phones: two INVITEs per phone,
# two pushes per token, a CANCEL to the answering phone.
# Usage: two_phones_test.sh PROXY_BIN PUSHER_BIN EMULATOR_BIN
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PROXY=${1:?proxy binary}
PUSHER=${2:?pusher binary}
EMULATOR=${3:?emulator binary}

fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in kamailio sipp ss curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (./dev setup installs it)"
done
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
use_tmp_dir pushgate-two-phones-e2e
logs() { for f in "$TMP"/*.log "$TMP"/*.out; do [[ -f $f ]] && { echo "== $f"; tail -40 "$f"; }; done >&2; }
wait_for() {  # wait_for WHAT COMMAND...
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  logs; fail "$what never came up (10 s)"
}

KPORT=$(port); GPORT=$(port); H2PORT=$(port); CTLPORT=$(port)
GRPCPORT=$(port); ADMIN=$(port); PUSHER_ADMIN=$(port)
ANSWERS=$(port); RINGS=$(port); CALLER=$(port)

"$ROOT/tests/fakes/make-test-credentials.sh" "$TMP/creds" >/dev/null
source "$TMP/creds/credentials.env"
TOKEN_A=$(printf 'a0a0a0%.0s' {1..10})abcd  # 64 hex digits
TOKEN_B=$(printf 'b0b0b0%.0s' {1..10})abcd

"$EMULATOR" --listen=127.0.0.1:$H2PORT --control=127.0.0.1:$CTLPORT \
  --tls-cert="$SERVER_CERT" --tls-key="$SERVER_KEY" \
  --apns-key="$APNS_TEAM_ID:$APNS_KEY_ID:$APNS_KEY_PUB" >"$TMP/emulator.log" 2>&1 &
PIDS+=($!)
cat >"$TMP/pusher.toml" <<TOML
[grpc]
listen = "127.0.0.1:$GRPCPORT"
[apns]
token_keys = ["$APNS_TEAM_ID:$APNS_KEY_ID:$APNS_KEY_P8"]
production_url = "https://127.0.0.1:$H2PORT"
sandbox_url = "https://127.0.0.1:$H2PORT"
[http2]
ca_file = "$CA_CERT"
[admin]
listen = "127.0.0.1:$PUSHER_ADMIN"
TOML
"$PUSHER" --config "$TMP/pusher.toml" >"$TMP/pusher.log" 2>&1 &
PIDS+=($!)
start_kamailio kamailio "$ROOT/deploy/kamailio/kamailio.cfg" 32 4 \
  -A "CTL_SOCKET=\"unix:$TMP/kamailio_ctl\"" -l "udp:127.0.0.1:$KPORT" -l "tcp:127.0.0.1:$KPORT"
openssl rand -hex 32 >"$TMP/masquerade.secret"
cat >"$TMP/proxy.toml" <<TOML
[sip]
listen = ["udp:127.0.0.1:$GPORT"]
backend = "sip:127.0.0.1:$KPORT;transport=udp"
trusted_backends = ["127.0.0.1:$KPORT"]  # on loopback the phones share the IP
masquerade_secret_file = "$TMP/masquerade.secret"
[push]
target = "dns:///127.0.0.1:$GRPCPORT"
[fork]
call_timeout = "30s"
[admin]
listen = "127.0.0.1:$ADMIN"
[limits]
rate_limit_requests = 0  # on loopback every phone is one source address
TOML
start_proxy
wait_for "the emulator" curl -sf "http://127.0.0.1:$CTLPORT/stats"
wait_for "the proxy" curl -sf "http://127.0.0.1:$ADMIN/healthz"
wait_for "kamailio" bash -c "ss -Hlnu 'sport = :$KPORT' | grep -q ."
wait_for "the pusher" bash -c "ss -Hlnt 'sport = :$GRPCPORT' | grep -q ."

SCENARIOS=$(cd "$(dirname "$0")/../scenarios" && pwd)
# register.xml PORT TOKEN INSTANCE: a phone's REGISTER through the gateway, then awake for 8 s
# (its calls run as sipp's out-of-call scenario).
register_xml() {
  cat <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
  <send retrans="500">
    <![CDATA[
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:bob@example.org>;tag=[pid]reg
To: <sip:bob@example.org>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:bob@127.0.0.1:$1;pn-provider=apns;pn-prid=$2;pn-param=$APNS_TEAM_ID.$APNS_BUNDLE.voip>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-$3>"
Max-Forwards: 70
Expires: 600
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="8000"/>
</scenario>
EOF
}
register_xml "$ANSWERS" "$TOKEN_A" 00000000e2ea >"$TMP/register_a.xml"
register_xml "$RINGS" "$TOKEN_B" 00000000e2eb >"$TMP/register_b.xml"
# The answering phone waits a little so that the other one rings first (a real race otherwise).
sed 's|<recv request="INVITE"/>|<recv request="INVITE"/>\n  <pause milliseconds="300"/>|' \
  "$SCENARIOS/answer.xml" >"$TMP/answers.xml"

sipp -nostdin -sf "$TMP/register_a.xml" -oocsf "$TMP/answers.xml" -key user bob -i 127.0.0.1 \
  -p "$ANSWERS" -m 1 -t u1 -timeout 20s -trace_msg -message_file "$TMP/answers_msgs.log" \
  -trace_err -error_file "$TMP/answers_err.log" "127.0.0.1:$GPORT" >"$TMP/answers.out" 2>&1 &
PIDS+=($!)
sipp -nostdin -sf "$TMP/register_b.xml" -oocsf "$SCENARIOS/ring_until_cancel.xml" -i 127.0.0.1 \
  -p "$RINGS" -m 1 -t u1 -timeout 20s -trace_msg -message_file "$TMP/rings_msgs.log" \
  -trace_err -error_file "$TMP/rings_err.log" "127.0.0.1:$GPORT" >"$TMP/rings.out" 2>&1 &
PIDS+=($!)
wait_for "phone A's registration" grep -q "^SIP/2.0 200" "$TMP/answers_msgs.log"
wait_for "phone B's registration" grep -q "^SIP/2.0 200" "$TMP/rings_msgs.log"

sipp -nostdin -sf "$SCENARIOS/caller.xml" -key ruri sip:bob@example.org -i 127.0.0.1 \
  -p "$CALLER" -m 1 -t u1 -timeout 15s -trace_msg -message_file "$TMP/caller_msgs.log" \
  -timeout_error -trace_err -error_file "$TMP/caller_err.log" "127.0.0.1:$KPORT" \
  >"$TMP/caller.out" 2>&1 || caller_failed=1
sleep 1  # the CANCEL to phone B and any late request

count() { grep -c "$1" "$2" || true; }
invites_a=$(count "^INVITE sip:bob@127.0.0.1:$ANSWERS" "$TMP/answers_msgs.log")
invites_b=$(count "^INVITE sip:bob@127.0.0.1:$RINGS" "$TMP/rings_msgs.log")
cancels_a=$(count "^CANCEL " "$TMP/answers_msgs.log")
cancels_b=$(count "^CANCEL " "$TMP/rings_msgs.log")
received=$(curl -sf "http://127.0.0.1:$CTLPORT/received" || true)
pushes_a=$(grep -o "\"token\":\"$TOKEN_A\"" <<<"$received" | wc -l)
pushes_b=$(grep -o "\"token\":\"$TOKEN_B\"" <<<"$received" | wc -l)
trying_110=$(count "^SIP/2.0 110" "$TMP/caller_msgs.log")
echo "phone A (answers): $invites_a INVITE(s), $cancels_a CANCEL(s), $pushes_a push(es);" \
  "phone B (rings): $invites_b INVITE(s), $cancels_b CANCEL(s), $pushes_b push(es);" \
  "caller: $trying_110 x 110"
[[ -z ${caller_failed:-} ]] ||
  { logs; cat "$TMP/caller_err.log" >&2 2>/dev/null; fail "the call to bob did not complete (200, ACK, BYE)"; }
[[ $invites_a == 1 && $invites_b == 1 ]] ||
  { cat "$TMP/answers_msgs.log" >&2; fail "each phone must get the call once"; }
[[ $cancels_a == 0 ]] || { cat "$TMP/answers_msgs.log" >&2; fail "the answering phone got a CANCEL"; }
[[ $cancels_b == 1 ]] || { cat "$TMP/rings_msgs.log" >&2; fail "the other phone must get one CANCEL"; }
# The push at once is iOS VoIP's default (push_delay_voip 0): one per phone, never two.
[[ $pushes_a -le 1 && $pushes_b -le 1 ]] || { echo "$received" >&2; fail "a token was pushed twice"; }
# One 110 per branch at most (Kamailio relays each branch's provisional responses).
[[ $trying_110 -le 2 ]] || fail "the caller got $trying_110 x 110"
echo "PASS: two phones of one user, each called and pushed once, no CANCEL to the answering phone"
