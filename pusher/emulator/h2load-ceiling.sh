#!/usr/bin/env bash
# The emulator's ceiling with h2load: starts pushgate-emulator with fresh test credentials, sends
# APNs VoIP pushes (token auth) and FCM v1 sends (OAuth access token) with h2load, prints one line
#   BENCH emulator-h2load apns_req_per_s=N fcm_req_per_s=N requests=N clients=C streams=M threads=T
# Usage: h2load-ceiling.sh [BUILD_DIR]   (default build/default; env N, CLIENTS, STREAMS, THREADS)
# Needs: h2load and nghttp (Debian nghttp2-client), openssl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${1:-${BUILD_DIR:-$ROOT/build/default}}
EMU=$BUILD_DIR/pusher/emulator/pushgate-emulator
N=${N:-100000}
CLIENTS=${CLIENTS:-4}
STREAMS=${STREAMS:-100}
THREADS=${THREADS:-1}
[[ -x $EMU ]] || { echo "no $EMU: build the pushgate-emulator target first" >&2; exit 1; }
for tool in h2load nghttp openssl; do
  command -v $tool >/dev/null || { echo "$tool missing (apt-get install nghttp2-client)" >&2; exit 1; }
done

work=$(mktemp -d)
emu_pid=
cleanup() {
  [[ -n $emu_pid ]] && kill -TERM "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$ROOT/tests/fakes/make-test-credentials.sh" "$work/creds" >/dev/null
# shellcheck disable=SC1091
. "$work/creds/credentials.env"
mkfifo "$work/out"
"$EMU" --apns-key "$APNS_TEAM_ID:$APNS_KEY_ID:$APNS_KEY_PUB" \
  --fcm-account "$FCM_CLIENT_EMAIL:$FCM_PUBLIC_KEY:$FCM_PROJECT" \
  --threads "$THREADS" --max-records 0 --control off --log-level warn >"$work/out" &
emu_pid=$!
read -r -t 10 line <"$work/out" || { echo "the emulator did not start" >&2; exit 1; }
h2=${line#*h2=}
h2=${h2%% *}

token=$(printf '%064x' 7)
cat >"$work/apns.json" <<'EOF'
{"aps":{"alert":{"title":"Incoming call","body":"Alice"},"sound":"default"},"call_id":"a84b4c76e66710@pc33.example.com","caller":"sip:alice@example.com"}
EOF
jwt=$("$EMU" make-jwt apns --p8 "$APNS_KEY_P8" --team "$APNS_TEAM_ID" --kid "$APNS_KEY_ID")
rate() { sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p'; }
check() {  # every request must have succeeded, else the figure means nothing
  grep -q "^status codes: $N 2xx" "$1" || { echo "h2load: not all requests succeeded:" >&2; cat "$1" >&2; exit 1; }
}
h2load -n "$N" -c "$CLIENTS" -m "$STREAMS" -t 1 --data="$work/apns.json" \
  -H "authorization: bearer $jwt" -H "apns-topic: $APNS_BUNDLE.voip" -H "apns-push-type: voip" \
  -H "apns-priority: 10" "https://$h2/3/device/$token" >"$work/apns.txt" 2>&1
check "$work/apns.txt"
apns=$(rate <"$work/apns.txt")

assertion=$("$EMU" make-jwt oauth --key "$CRED_DIR/fcm-sa.key" --email "$FCM_CLIENT_EMAIL" \
  --aud "https://$h2/token")
printf 'grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s' \
  "$assertion" >"$work/form"
access=$(nghttp -d "$work/form" -H "content-type: application/x-www-form-urlencoded" \
  "https://$h2/token" 2>/dev/null | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[[ -n $access ]] || { echo "no FCM access token from the emulator" >&2; exit 1; }
printf '{"message":{"token":"%s","data":{"call_id":"abc","caller":"sip:alice@example.com"},"android":{"priority":"high","ttl":"30s"}}}' \
  "$(printf 'f%.0s' {1..152})" >"$work/fcm.json"
h2load -n "$N" -c "$CLIENTS" -m "$STREAMS" -t 1 --data="$work/fcm.json" \
  -H "authorization: Bearer $access" -H "content-type: application/json" \
  "https://$h2/v1/projects/$FCM_PROJECT/messages:send" >"$work/fcm.txt" 2>&1
check "$work/fcm.txt"
fcm=$(rate <"$work/fcm.txt")

echo "BENCH emulator-h2load apns_req_per_s=$apns fcm_req_per_s=$fcm requests=$N clients=$CLIENTS streams=$STREAMS threads=$THREADS"
