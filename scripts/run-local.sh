#!/usr/bin/env bash
# ./dev run: the whole gateway on this machine, on embedded defaults, no containers:
#   pushgate-emulator  (stands for APNs and FCM)      h2 127.0.0.1:9443, control http://127.0.0.1:9080
#   pushgate-pusher    (gRPC)                         127.0.0.1:50061, admin http://127.0.0.1:9101
#   kamailio           (the backend registrar)        sip:127.0.0.1:5070 (udp, tcp)
#   pushgate-proxy     (what phones talk to)          sip:<host>:5060 (udp, tcp), admin http://127.0.0.1:9090
# Ctrl-C stops everything. Usage: scripts/run-local.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: run-local.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
run="$build/run-local"
mkdir -p "$run"
SIP_PORT=${PUSHGATE_RUN_SIP_PORT:-5060}
BACKEND_PORT=${PUSHGATE_RUN_BACKEND_PORT:-5070}

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "[run] stopping..."
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_for() {  # wait_for DESCRIPTION COMMAND...
  local what=$1
  shift
  for _ in $(seq 100); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "[run] $what did not come up; see $run/*.log" >&2
  exit 1
}

# Throw-away credentials: an APNs token key and an FCM service account the emulator trusts.
if [[ ! -f $run/creds/credentials.env ]]; then
  "$root/tests/fakes/make-test-credentials.sh" "$run/creds" >/dev/null
fi
# shellcheck disable=SC1091
source "$run/creds/credentials.env"

"$build/pusher/emulator/pushgate-emulator" --listen=127.0.0.1:9443 --control=127.0.0.1:9080 \
  --tls-cert="$SERVER_CERT" --tls-key="$SERVER_KEY" \
  --apns-key="$APNS_TEAM_ID:$APNS_KEY_ID:$APNS_KEY_PUB" \
  --fcm-account="$FCM_CLIENT_EMAIL:$FCM_PUBLIC_KEY:$FCM_PROJECT" \
  --oauth-audience=https://127.0.0.1:9443/token >"$run/emulator.log" 2>&1 &
pids+=($!)

cat >"$run/pusher.toml" <<TOML
[grpc]
listen = "127.0.0.1:50061"
[apns]
token_keys = ["$APNS_TEAM_ID:$APNS_KEY_ID:$APNS_KEY_P8"]
production_url = "https://127.0.0.1:9443"
sandbox_url = "https://127.0.0.1:9443"
[fcm]
service_accounts = ["$FCM_SERVICE_ACCOUNT"]
base_url = "https://127.0.0.1:9443"
token_uri_override = "https://127.0.0.1:9443/token"
[http2]
ca_file = "$CA_CERT"
[admin]
listen = "127.0.0.1:9101"
TOML
"$build/pusher/pushgate-pusher" --config "$run/pusher.toml" >"$run/pusher.log" 2>&1 &
pids+=($!)

kamailio -f "$root/deploy/kamailio/kamailio.cfg" -DD -E -A NO_DEFAULT_LISTEN \
  -A "CTL_SOCKET=\"unix:$run/kamailio_ctl\"" \
  -l "udp:127.0.0.1:$BACKEND_PORT" -l "tcp:127.0.0.1:$BACKEND_PORT" \
  -Y "$run" -w "$run" >"$run/kamailio.log" 2>&1 &
pids+=($!)

cat >"$run/proxy.toml" <<TOML
[sip]
listen = ["udp:0.0.0.0:$SIP_PORT", "tcp:0.0.0.0:$SIP_PORT"]
backend = "sip:127.0.0.1:$BACKEND_PORT;transport=udp"
trusted_backends = ["127.0.0.1"]
masquerade_secret_file = "$run/masquerade.secret"
[admin]
listen = "127.0.0.1:9090"
TOML
[[ -f $run/masquerade.secret ]] || openssl rand -hex 32 >"$run/masquerade.secret"
"$build/proxy/pushgate-proxy" --config "$run/proxy.toml" >"$run/proxy.log" 2>&1 &
pids+=($!)

wait_for "the emulator" curl -sf http://127.0.0.1:9080/stats
wait_for "the pusher" "$build/pusher/cli/pushgate-push" --health --timeout 1s
wait_for "the proxy" curl -sf http://127.0.0.1:9090/healthz
wait_for "kamailio" kamcmd -s "unix:$run/kamailio_ctl" core.version

host=$(hostname -I 2>/dev/null | awk '{print $1}')
cat <<MSG

pushgate is running (logs in $run/):
  Phones register through  sip:${host:-127.0.0.1}:$SIP_PORT  (udp and tcp; any domain), e.g.
      Contact: <sip:alice@PHONE-IP:PORT;pn-provider=apns;pn-prid=<hex token>;pn-param=$APNS_TEAM_ID.$APNS_BUNDLE.voip>
  The backend it relays to: Kamailio registrar at sip:127.0.0.1:$BACKEND_PORT  (kamcmd -s unix:$run/kamailio_ctl ul.dump)
  Pushes go to the pusher at 127.0.0.1:50061 and land at the emulator:  curl -s http://127.0.0.1:9080/received
  Try a push by hand:
      $build/pusher/cli/pushgate-push --provider apns --param $APNS_TEAM_ID.$APNS_BUNDLE.voip --token $(printf 'ab%.0s' {1..32})
  Metrics: http://127.0.0.1:9090/metrics (proxy), http://127.0.0.1:9101/metrics (pusher)
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
echo "[run] a process exited; see $run/*.log" >&2
