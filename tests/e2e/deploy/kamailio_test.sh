#!/usr/bin/env bash
# deploy/kamailio/kamailio.cfg, run by the real kamailio on loopback:
#  1. `kamailio -c` accepts it;
#  2. a sipp phone REGISTERs a contact with push parameters and a pushgate-style restore
#     parameter; the 200 lists it, and `kamcmd ul.dump` shows it stored exactly as sent;
#  3. a sipp caller INVITEs the user: Kamailio routes the INVITE to the stored contact, with the
#     parameters in the request URI (a sipp UAS checks them), and the call completes;
#  4. an INVITE for a user nobody registered gets 404.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CFG=${KAMAILIO_CFG:-$ROOT/deploy/kamailio/kamailio.cfg}

fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in kamailio kamcmd sipp ss; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (./dev setup installs it)"
done

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
use_tmp_dir pushgate-kamailio-test

KPORT=$(port)
UPORT=$(port)
CTL="unix:$TMP/kamailio_ctl"
TOKEN=0f3e9a7c41d2b8e6
CTRT="CtRt7a1b=udp:127.0.0.1:$UPORT"

# 1. Syntax.
kamailio -c -f "$CFG" >"$TMP/check.log" 2>&1 || { cat "$TMP/check.log" >&2; fail "kamailio -c rejects $CFG"; }

start_kamailio kamailio "$CFG" 32 4 -A "CTL_SOCKET=\"$CTL\"" -l "udp:127.0.0.1:$KPORT" \
  -l "tcp:127.0.0.1:$KPORT"
wait_listen u "$KPORT" kamailio

# 2. REGISTER with push parameters.
cat >"$TMP/register.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
  <send retrans="500">
    <![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:bob@example.org>;tag=[pid]reg[call_number]
To: <sip:bob@example.org>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:bob@127.0.0.1:$UPORT;pn-provider=apns;pn-prid=$TOKEN;pn-param=ABCD123456.org.example.phone.voip;$CTRT>
Max-Forwards: 70
Expires: 600
Content-Length: 0

    ]]>
  </send>
  <recv response="200">
    <action>
      <ereg regexp="pn-prid=$TOKEN" search_in="hdr" header="Contact:" check_it="true" assign_to="c"/>
    </action>
  </recv>
  <Reference variables="c"/>
</scenario>
EOF
sipp -nostdin -sf "$TMP/register.xml" -i 127.0.0.1 -p "$(free_port)" -m 1 -t u1 \
  -timeout 10s -timeout_error -trace_err -error_file "$TMP/register_err.log" \
  "127.0.0.1:$KPORT" >"$TMP/register.out" 2>&1 ||
  { cat "$TMP/register_err.log" "$TMP/kamailio.log" >&2 2>/dev/null || true
    fail "REGISTER through Kamailio: no 200 listing the contact with its push parameters"; }

kamcmd -s "$CTL" ul.dump >"$TMP/uldump.txt" 2>&1 || { cat "$TMP/uldump.txt" >&2; fail "kamcmd ul.dump failed"; }
grep -F "Address: sip:bob@127.0.0.1:$UPORT;pn-provider=apns;pn-prid=$TOKEN;pn-param=ABCD123456.org.example.phone.voip;$CTRT" \
  "$TMP/uldump.txt" >/dev/null || { cat "$TMP/uldump.txt" >&2; fail "the location table does not hold the contact exactly as sent"; }

# 3. INVITE bob: must reach the registered contact with its parameters in the request URI.
cat >"$TMP/phone.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="phone">
  <recv request="INVITE">
    <action>
      <ereg regexp="^INVITE sip:bob@127\\.0\\.0\\.1:$UPORT;[^ ]*pn-prid=$TOKEN[^ ]*CtRt7a1b=udp:127\\.0\\.0\\.1:$UPORT"
            search_in="msg" check_it="true" assign_to="r"/>
    </action>
  </recv>
  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]phone[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:bob@[local_ip]:[local_port]>
Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]phone[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:bob@[local_ip]:[local_port]>
Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
  <Reference variables="r"/>
</scenario>
EOF
sipp -nostdin -sf "$TMP/phone.xml" -i 127.0.0.1 -p "$UPORT" -m 1 -t u1 \
  -timeout 20s -timeout_error -trace_err -error_file "$TMP/phone_err.log" >"$TMP/phone.out" 2>&1 &
PHONE=$!
PIDS+=($PHONE)
wait_listen u "$UPORT" "sipp phone"

sipp -nostdin -sf "$(dirname "$0")/../scenarios/caller.xml" -key ruri "sip:bob@127.0.0.1:$KPORT" \
  -i 127.0.0.1 -p "$(free_port)" -m 1 -t u1 -timeout 15s -timeout_error -trace_err \
  -error_file "$TMP/caller_err.log" \
  "127.0.0.1:$KPORT" >"$TMP/caller.out" 2>&1 || caller_rc=$?
phone_rc=0
wait "$PHONE" || phone_rc=$?
if [[ $phone_rc -ne 0 ]]; then
  cat "$TMP/phone_err.log" "$TMP/kamailio.log" >&2 2>/dev/null || true
  fail "the phone never got the INVITE routed to its registered contact with its parameters (sipp rc $phone_rc)"
fi
[[ ${caller_rc:-0} -eq 0 ]] || { cat "$TMP/caller_err.log" >&2 2>/dev/null || true; fail "the call did not complete for the caller (sipp rc $caller_rc)"; }

# 4. Unknown user: 404.
cat >"$TMP/unknown.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="unknown">
  <send retrans="500">
    <![CDATA[
INVITE sip:nobody@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller@example.org>;tag=[pid]u[call_number]
To: <sip:nobody@example.org>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="404"/>
  <send>
    <![CDATA[
ACK sip:nobody@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: <sip:caller@example.org>;tag=[pid]u[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
</scenario>
EOF
sipp -nostdin -sf "$TMP/unknown.xml" -i 127.0.0.1 -p "$(free_port)" -m 1 -t u1 \
  -timeout 10s -timeout_error -trace_err -error_file "$TMP/unknown_err.log" \
  "127.0.0.1:$KPORT" >"$TMP/unknown.out" 2>&1 ||
  { cat "$TMP/unknown_err.log" >&2 2>/dev/null || true; fail "INVITE for an unregistered user did not get 404"; }

echo "PASS: kamailio.cfg stores contacts as sent and routes INVITEs to them"
