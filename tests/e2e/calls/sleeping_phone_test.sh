#!/usr/bin/env bash
# The sleeping-phone call with real peers on loopback:
#  1. a sipp phone REGISTERs through pushgate-proxy to Kamailio (contact with VoIP push params);
#  2. the phone goes silent (nothing listens on its contact any more);
#  3. a sipp caller INVITEs the user via Kamailio; Kamailio routes to the masqueraded contact,
#     i.e. the gateway, which forks and pushes: the emulator must receive the VoIP push with the
#     app's topic, the phone's token and the call's Call-ID;
#  4. the phone wakes up: REGISTERs again from a new port and must receive the INVITE at once,
#     answers; the caller gets 200, ACK and BYE go end to end through Kamailio and the gateway.
# With MODE "cancel": the caller CANCELs after the push, before the phone wakes; the caller gets
# 487, and the iOS VoIP phone still gets the INVITE, then the CANCEL, when it registers again
# (CallKit shows the missed call).
# With MODE "outbound": a phone uses the gateway as outbound proxy to call a user registered at
# Kamailio (Record-Route, in-dialog ACK/BYE through the gateway).
# Usage: sleeping_phone_test.sh PROXY_BIN PUSHER_BIN EMULATOR_BIN [call|cancel|outbound]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PROXY=${1:?proxy binary}
PUSHER=${2:?pusher binary}
EMULATOR=${3:?emulator binary}
MODE=${4:-call}

fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in kamailio sipp ss curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (./dev setup installs it)"
done
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
use_tmp_dir pushgate-calls-e2e
logs() { for f in "$TMP"/*.log "$TMP"/*.out; do [[ -f $f ]] && { echo "== $f"; tail -40 "$f"; }; done >&2; }
wait_for() {  # wait_for WHAT COMMAND...
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  logs; fail "$what never came up (10 s)"
}

KPORT=$(port); GPORT=$(port); H2PORT=$(port); CTLPORT=$(port)
GRPCPORT=$(port); ADMIN=$(port); PUSHER_ADMIN=$(port)
PHONE1=$(port); PHONE2=$(port); CALLER=$(port); REG=$(port)

"$ROOT/tests/fakes/make-test-credentials.sh" "$TMP/creds" >/dev/null
source "$TMP/creds/credentials.env"
TOKEN=$(printf 'c0ffee%.0s' {1..10})abcd  # 64 hex digits

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
verify_peer = ${E2E_VERIFY_PEER:-true}  # E2E_VERIFY_PEER=false to debug TLS
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
listen = ["udp:127.0.0.1:$GPORT", "tcp:127.0.0.1:$GPORT"]
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

CONTACT_PARAMS="pn-provider=apns;pn-prid=$TOKEN;pn-param=$APNS_TEAM_ID.$APNS_BUNDLE.voip"
INSTANCE='+sip.instance="<urn:uuid:00000000-0000-0000-0000-00000000e2e1>"'

# 1. The phone registers through the gateway, then goes silent.
cat >"$TMP/register.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
  <send retrans="500">
    <![CDATA[
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:bob@example.org>;tag=[pid]reg[call_number]
To: <sip:bob@example.org>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:bob@127.0.0.1:$PHONE1;$CONTACT_PARAMS>;$INSTANCE
Max-Forwards: 70
Expires: 600
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
EOF
sipp -nostdin -sf "$TMP/register.xml" -i 127.0.0.1 -p "$REG" -m 1 -t u1 -timeout 10s \
  -timeout_error -trace_err -error_file "$TMP/register_err.log" "127.0.0.1:$GPORT" \
  >"$TMP/register.out" 2>&1 || { logs; fail "the phone's REGISTER through the gateway got no 200"; }

# 2. The caller INVITEs bob via Kamailio (in the background: it waits for the phone to wake).
# The caller and the answering phone: tests/e2e/scenarios (sipp -key ruri / -key user).
SCENARIOS=$(cd "$(dirname "$0")/../scenarios" && pwd)
CALLER_XML=$SCENARIOS/caller.xml
# Outbound-proxy mode: a phone calls carol (registered directly at Kamailio) through the gateway
# as its outbound proxy. The INVITE must reach carol with the gateway's Record-Route, and ACK and
# BYE must come back through the gateway (loose routing) to her.
if [[ $MODE == outbound ]]; then
  CAROL=$(port)
  cat >"$TMP/carol_reg.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="carol">
  <send retrans="500">
    <![CDATA[
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carol@example.org>;tag=[pid]carol
To: <sip:carol@example.org>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:carol@127.0.0.1:$CAROL>
Max-Forwards: 70
Expires: 600
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="5000"/>
</scenario>
EOF
  sipp -nostdin -sf "$TMP/carol_reg.xml" -oocsf "$SCENARIOS/answer.xml" -key user carol \
    -i 127.0.0.1 -p "$CAROL" -m 1 -t u1 -timeout 20s -trace_msg -message_file "$TMP/carol_msgs.log" -trace_err \
    -error_file "$TMP/carol_err.log" "127.0.0.1:$KPORT" >"$TMP/carol.out" 2>&1 &
  PIDS+=($!)
  # Carol must be in the registrar before the call (a fixed sleep lost the race under load).
  wait_for "carol's registration" grep -q "^SIP/2.0 200" "$TMP/carol_msgs.log"
  sipp -nostdin -sf "$CALLER_XML" -key ruri sip:carol@example.org -i 127.0.0.1 -p "$CALLER" \
    -m 1 -t u1 -timeout 15s \
    -timeout_error -trace_err -error_file "$TMP/outbound_err.log" "127.0.0.1:$GPORT" \
    >"$TMP/outbound.out" 2>&1 ||
    { logs; cat "$TMP/outbound_err.log" "$TMP/carol_err.log" >&2 2>/dev/null; fail "the outbound call through the gateway did not complete (200, ACK, BYE)"; }
  grep -q "^Record-Route: <sip:127.0.0.1:$GPORT" "$TMP/carol_msgs.log" ||
    { cat "$TMP/carol_msgs.log" >&2; fail "carol's INVITE carries no Record-Route of the gateway"; }
  grep -q "^BYE sip:carol@127.0.0.1:$CAROL" "$TMP/carol_msgs.log" ||
    { cat "$TMP/carol_msgs.log" >&2; fail "the BYE never reached carol"; }
  echo "PASS: outbound-proxy call through the gateway, record-routed, ACK and BYE in the dialog"
  exit 0
fi

if [[ $MODE == cancel ]]; then
CALLER_XML=$TMP/caller_cancels.xml
cat >"$CALLER_XML" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller-cancels">
  <send retrans="500">
    <![CDATA[
INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-cancel-[pid]-[call_number]
From: <sip:caller@example.org>;tag=[pid]c[call_number]
To: <sip:bob@example.org>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="110"/>
  <pause milliseconds="1500"/>
  <send>
    <![CDATA[
CANCEL sip:bob@example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-cancel-[pid]-[call_number]
From: <sip:caller@example.org>;tag=[pid]c[call_number]
To: <sip:bob@example.org>
Call-ID: [call_id]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <!-- The CANCEL's 200 and the INVITE's 487 are two transactions: Kamailio relays them from
       different processes, so either may come first (usually the 200). -->
  <recv response="200" optional="true"/>
  <recv response="487"/>
  <send>
    <![CDATA[
ACK sip:bob@example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-cancel-[pid]-[call_number]
From: <sip:caller@example.org>;tag=[pid]c[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <!-- The CANCEL's 200 when it came after the 487; nothing more when it came first. -->
  <recv response="200" timeout="500" ontimeout="done"/>
  <label id="done"/>
  <pause milliseconds="1"/>
</scenario>
EOF
fi
sipp -nostdin -sf "$CALLER_XML" -key ruri sip:bob@example.org -i 127.0.0.1 -p "$CALLER" -m 1 -t u1 \
  -timeout 30s -cid_str "e2e-sleeping-%u-%p@%s" \
  -timeout_error -trace_err -error_file "$TMP/caller_err.log" "127.0.0.1:$KPORT" \
  >"$TMP/caller.out" 2>&1 &
CALLER_PID=$!
PIDS+=($CALLER_PID)

# 3. The emulator receives the VoIP push: topic, token, call id.
pushed=""
for _ in $(seq 1 100); do
  pushed=$(curl -sf "http://127.0.0.1:$CTLPORT/received" || true)
  grep -q "$TOKEN" <<<"$pushed" && break
  sleep 0.1
done
grep -q "$TOKEN" <<<"$pushed" || { logs; fail "the emulator never received a push for the phone's token"; }
grep -q "\"$APNS_BUNDLE.voip\"" <<<"$pushed" || { echo "$pushed" >&2; fail "the push's topic is not $APNS_BUNDLE.voip"; }
grep -q "e2e-sleeping-" <<<"$pushed" || { echo "$pushed" >&2; fail "the push does not carry the call's Call-ID"; }

if [[ $MODE == cancel ]]; then
  wait "$CALLER_PID" || { logs; cat "$TMP/caller_err.log" >&2 2>/dev/null; fail "the caller's CANCEL did not end with 487"; }
fi

# 4. The phone wakes up: registers again from a new port and gets the call at once.
# sipp cannot take a new Call-ID inside a client scenario: the woken phone's REGISTER is the
# main scenario (kept alive for a while), the call it receives runs as the out-of-call scenario.
cat >"$TMP/wake.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="wake">
  <send retrans="500">
    <![CDATA[
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:bob@example.org>;tag=[pid]reg2
To: <sip:bob@example.org>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:bob@127.0.0.1:$PHONE2;$CONTACT_PARAMS>;$INSTANCE
Max-Forwards: 70
Expires: 600
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="4000"/>
</scenario>
EOF
PHONE_XML=$SCENARIOS/answer.xml
if [[ $MODE == cancel ]]; then
PHONE_XML=$SCENARIOS/ring_until_cancel.xml
fi
sipp -nostdin -sf "$TMP/wake.xml" -oocsf "$PHONE_XML" -key user bob -i 127.0.0.1 -p "$PHONE2" \
  -m 1 -t u1 -timeout 20s -trace_msg -message_file "$TMP/phone_msgs.log" -trace_err \
  -error_file "$TMP/phone_err.log" "127.0.0.1:$GPORT" >"$TMP/phone.out" 2>&1 &
PHONE_PID=$!
PIDS+=($PHONE_PID)
if [[ $MODE == cancel ]]; then
  wait "$PHONE_PID" || true
  grep -q "^INVITE sip:bob@127.0.0.1:$PHONE2;" "$TMP/phone_msgs.log" ||
    { logs; cat "$TMP/phone_msgs.log" >&2; fail "the woken VoIP phone never got the missed call's INVITE"; }
  grep -q "^CANCEL sip:bob@127.0.0.1:$PHONE2;" "$TMP/phone_msgs.log" ||
    { cat "$TMP/phone_msgs.log" >&2; fail "the woken VoIP phone never got the CANCEL after the INVITE"; }
  echo "PASS: caller cancelled before the wake-up: 487 to the caller, INVITE then CANCEL to the woken phone"
  exit 0
fi
wait "$CALLER_PID" || { logs; cat "$TMP/caller_err.log" "$TMP/phone_err.log" >&2 2>/dev/null; fail "the caller's call did not complete (200, ACK, BYE)"; }
grep -q "^INVITE sip:bob@127.0.0.1:$PHONE2;" "$TMP/phone_msgs.log" ||
  { cat "$TMP/phone_msgs.log" >&2; fail "the INVITE did not go to the woken phone's new contact"; }
echo "PASS: sleeping phone woken by a VoIP push, call delivered on re-REGISTER, BYE end to end"
