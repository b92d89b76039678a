#!/usr/bin/env bash
# End-to-end REGISTER relay (issue 3): sipp phones -> pushgate-proxy -> real Kamailio registrar
# (deploy/kamailio/kamailio.cfg), everything on 127.0.0.1 with free random ports.
#
#   register_test.sh PROXY_BINARY [memory|redis]
#
#  1. a UDP phone (alice) and a TCP phone (carol) REGISTER with RFC 8599 push parameters;
#     the 200 each receives lists its OWN contact (address, push parameters, no pgw) with the
#     expiry the backend granted;
#  2. `kamcmd ul.dump`: Kamailio's location table holds ONLY masqueraded contacts: the gateway's
#     host/port, a pgw parameter, no pn-* parameter, no trace of the phones' addresses;
#  3. pushgate's registrar holds them too: the pushgate_proxy_bindings gauge on the admin
#     endpoint counts them; with the redis store the stored records hold the original contacts
#     with their push tokens (redis-cli GET);
#  4. alice refreshes (same Call-ID, higher CSeq, shorter expiry): the 200 shows the new expiry,
#     Kamailio still has one contact for her (replaced, not added);
#  5. alice de-registers (Expires: 0): the 200 no longer lists her contact, Kamailio's table no
#     longer has her, pushgate's registrar neither; carol is untouched.
# KEEP_TMP=1 keeps the temporary directory (logs, configs, sipp traces).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
CFG=${KAMAILIO_CFG:-$ROOT/deploy/kamailio/kamailio.cfg}
PROXY=${1:-}
STORE=${2:-memory}

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -n $PROXY && -x $PROXY ]] || fail "usage: $0 PROXY_BINARY [memory|redis] (pushgate-proxy not built: \"$PROXY\")"
[[ $STORE == memory || $STORE == redis ]] || fail "store must be memory or redis, not \"$STORE\""
tools=(kamailio kamcmd sipp ss curl)
[[ $STORE == redis ]] && tools+=(redis-server redis-cli)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (./dev setup installs it)"
done

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
use_tmp_dir pushgate-register-e2e

# Every key this test writes must exist in the proxy's schema (names may change while the proxy
# is being finished): fail with the key's name rather than with a confusing config error.
need_proxy_keys "$PROXY" sip.listen sip.backend sip.masquerade_secret sip.domains push.target \
  admin.listen store.kind store.redis_address log.level

KPORT=$(port); PPORT=$(port); APORT=$(port); ALICE_PORT=$(port); CAROL_PORT=$(port)
CTL="unix:$TMP/kamailio_ctl"
ALICE_TOKEN=a11ce0f3e9a7c41d2b8e6a11ce0f3e9a7c41d2b8e6
CAROL_TOKEN=ca401e5b7d9f1134c5a6ca401e5b7d9f1134c5a6
SECRET=e2e-register-secret-$RANDOM$RANDOM

start_kamailio kamailio "$CFG" 32 4 -A "CTL_SOCKET=\"$CTL\"" -l "udp:127.0.0.1:$KPORT" \
  -l "tcp:127.0.0.1:$KPORT"
wait_listen u "$KPORT" kamailio

STORE_TOML="kind = \"memory\""
if [[ $STORE == redis ]]; then
  RPORT=$(port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$TMP" >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  wait_listen t "$RPORT" redis-server
  STORE_TOML="kind = \"redis\"
redis_address = \"tcp://127.0.0.1:$RPORT\""
fi

cat >"$TMP/proxy.toml" <<EOF
[sip]
listen = ["udp:127.0.0.1:$PPORT", "tcp:127.0.0.1:$PPORT"]
backend = "sip:127.0.0.1:$KPORT"
domains = ["*"]
masquerade_secret = "$SECRET"

[limits]
rate_limit_requests = 0  # on loopback every phone is one source address

[store]
$STORE_TOML

[push]
target = ""

[admin]
listen = "127.0.0.1:$APORT"

[log]
level = "debug"
EOF
start_proxy
wait_listen u "$PPORT" "pushgate-proxy (udp)"
wait_listen t "$PPORT" "pushgate-proxy (tcp)"
wait_listen t "$APORT" "pushgate-proxy admin endpoint"

dump_logs() {
  echo "---- pushgate-proxy log (tail)" >&2; tail -n 60 "$TMP/proxy.log" >&2 || true
  echo "---- kamailio log (tail)" >&2; tail -n 30 "$TMP/kamailio.log" >&2 || true
}

# phone NAME USER PORT TRANSPORT(u1|t1) TOKEN CSEQ EXPIRES SCENARIO
phone() {
  local name=$1 user=$2 lport=$3 t=$4 token=$5 cseq=$6 expires=$7 sf=$8 tparam=""
  [[ $t == t1 ]] && tparam=";transport=tcp"
  if ! sipp -nostdin -sf "$HERE/$sf" -i 127.0.0.1 -p "$lport" -m 1 -t "$t" \
      -key user "$user" -key token "$token" -key expires "$expires" -key seq "$cseq" \
      -cid_str "e2e-$user-$SECRET" -key tparam "$tparam" \
      -timeout 10s -timeout_error -trace_err -error_file "$TMP/$name.err" \
      -trace_logs -log_file "$TMP/$name.log" \
      "127.0.0.1:$PPORT" >"$TMP/$name.out" 2>&1; then
    cat "$TMP/$name.err" >&2 2>/dev/null || true
    dump_logs
    fail "$name: $user's REGISTER (expires $expires, $sf) through pushgate did not get the expected 200"
  fi
}

# expect_reply NAME USER PORT TOKEN TPARAM EXPIRES: the 200 listed the phone's own contact.
expect_reply() {
  local name=$1 user=$2 lport=$3 token=$4 tparam=$5 expires=$6 c
  c=$(sed -n 's/^CONTACT //p' "$TMP/$name.log" | tail -n 1)
  [[ -n $c ]] || fail "$name: sipp logged no Contact of the 200"
  [[ $c == *"<sip:$user@127.0.0.1:$lport$tparam;"* ]] ||
    fail "$name: the 200 does not list $user's own contact 127.0.0.1:$lport$tparam: $c"
  for p in pn-provider=apns "pn-prid=$token" pn-param=ABCD123456.org.example.phone.voip; do
    [[ $c == *"$p"* ]] || fail "$name: the 200's contact lost its push parameter $p: $c"
  done
  local granted
  granted=$(sed -n 's/^GRANTED //p' "$TMP/$name.log" | tail -n 1)
  [[ $granted == "$expires" ]] ||
    fail "$name: the 200 lists expires=$granted for $user's contact, the backend granted $expires"
}

uldump() {
  kamcmd -s "$CTL" ul.dump >"$TMP/uldump.txt" 2>&1 || { cat "$TMP/uldump.txt" >&2; fail "kamcmd ul.dump failed"; }
}

# check_location "alice carol": Kamailio holds exactly one masqueraded contact for each listed
# user and nothing else.
check_location() {
  local users=$1 u addrs n
  uldump
  addrs=$(sed -n 's/^[[:space:]]*Address: //p' "$TMP/uldump.txt")
  n=$(printf '%s\n' "$addrs" | grep -c . || true)
  [[ $n -eq $(wc -w <<<"$users") ]] ||
    { cat "$TMP/uldump.txt" >&2; fail "Kamailio's location table holds $n contact(s), expected one for each of: $users"; }
  for u in $users; do
    printf '%s\n' "$addrs" | grep -Eq "^sip:$u@127\.0\.0\.1:$PPORT(;[^;]+)*;pgw=[A-Za-z0-9_-]+(;[^;]+)*$" ||
      { cat "$TMP/uldump.txt" >&2; fail "no masqueraded contact for $u (sip:$u@127.0.0.1:$PPORT;...;pgw=...) in Kamailio's location table"; }
  done
  if grep -q 'pn-' "$TMP/uldump.txt"; then
    cat "$TMP/uldump.txt" >&2; fail "a push parameter (pn-*) reached Kamailio's location table"
  fi
  for p in "$ALICE_PORT" "$CAROL_PORT"; do
    if grep -q "127.0.0.1:$p\b" "$TMP/uldump.txt"; then
      cat "$TMP/uldump.txt" >&2; fail "a phone's own address (127.0.0.1:$p) reached Kamailio's location table"
    fi
  done
}

# expect_bindings N: pushgate's registrar counts N bindings (gauge refreshed every second).
expect_bindings() {
  local want=$1 got=""
  for _ in $(seq 1 50); do
    got=$(curl -sf "http://127.0.0.1:$APORT/metrics" | awk '$1 == "pushgate_proxy_bindings" {print $2}') || true
    [[ -n $got ]] && awk -v g="$got" -v w="$want" 'BEGIN {exit !(g + 0 == w + 0)}' && return 0
    sleep 0.1
  done
  dump_logs
  fail "pushgate's registrar never counted $want binding(s) (pushgate_proxy_bindings=${got:-absent} on /metrics)"
}

# expect_record USER TOKEN: the Redis record of USER's AOR holds the original contact.
expect_record() {
  local user=$1 token=$2 keys rec
  keys=$(redis-cli -p "$RPORT" --raw KEYS "pushgate:aor:*$user*")
  [[ -n $keys ]] || fail "pushgate's Redis registrar has no record for $user (keys: $(redis-cli -p "$RPORT" --raw KEYS '*' | tr '\n' ' '))"
  rec=$(redis-cli -p "$RPORT" --raw GET "$(head -n 1 <<<"$keys")" | tr -c '[:print:]' '.')
  # Binary record (EncodeBindings): URI parameters are length-prefixed names and values, ports
  # are varints; look for the pieces.
  local piece
  for piece in "$user" 127.0.0.1 pn-provider apns pn-prid "$token" pn-param ABCD123456.org.example.phone.voip; do
    [[ $rec == *"$piece"* ]] ||
      fail "pushgate's Redis record for $user lacks \"$piece\" of the original contact: $rec"
  done
}
expect_no_record() {  # expect_no_record USER TOKEN
  local user=$1 keys rec
  keys=$(redis-cli -p "$RPORT" --raw KEYS "pushgate:aor:*$user*")
  if [[ -n $keys ]]; then
    rec=$(redis-cli -p "$RPORT" --raw GET "$(head -n 1 <<<"$keys")" | tr -c '[:print:]' '.')
    [[ $rec != *"$2"* ]] || fail "pushgate's Redis registrar still holds $user's contact after de-registration: $rec"
  fi
}

# 1. Register a UDP phone and a TCP phone.
phone alice-reg alice "$ALICE_PORT" u1 "$ALICE_TOKEN" 1 600 register.xml
expect_reply alice-reg alice "$ALICE_PORT" "$ALICE_TOKEN" "" 600
phone carol-reg carol "$CAROL_PORT" t1 "$CAROL_TOKEN" 1 900 register.xml
expect_reply carol-reg carol "$CAROL_PORT" "$CAROL_TOKEN" ";transport=tcp" 900

# 2. Kamailio's table: masqueraded contacts only.
check_location "alice carol"
# 3. pushgate's registrar: the originals.
expect_bindings 2
if [[ $STORE == redis ]]; then
  expect_record alice "$ALICE_TOKEN"
  expect_record carol "$CAROL_TOKEN"
fi

# 4. Refresh alice with a shorter expiry.
phone alice-refresh alice "$ALICE_PORT" u1 "$ALICE_TOKEN" 2 300 register.xml
expect_reply alice-refresh alice "$ALICE_PORT" "$ALICE_TOKEN" "" 300
check_location "alice carol"
alice_expires=$(awk '/AoR: alice$/ {a = 1} a && /Expires:/ {print $2; exit}' "$TMP/uldump.txt")
[[ -n $alice_expires && $alice_expires -le 300 ]] ||
  { cat "$TMP/uldump.txt" >&2; fail "Kamailio did not take alice's refresh (Expires ${alice_expires:-?} after refreshing to 300)"; }
expect_bindings 2

# 5. De-register alice.
phone alice-unreg alice "$ALICE_PORT" u1 "$ALICE_TOKEN" 3 0 unregister.xml
check_location "carol"
expect_bindings 1
if [[ $STORE == redis ]]; then
  expect_no_record alice "$ALICE_TOKEN"
  expect_record carol "$CAROL_TOKEN"
fi

kill -0 "$PROXY_PID" 2>/dev/null || { dump_logs; fail "pushgate-proxy died during the test"; }
echo "PASS: REGISTER relay through pushgate ($STORE store): Kamailio holds masqueraded contacts only, phones see their own, refresh and de-registration reach both registrars"
