#!/usr/bin/env bash
# bench/hostile: the register benchmark's valid load with and without 10% hostile traffic.
#
# On 127.0.0.1 with free ports: a Kamailio registrar (deploy/kamailio/kamailio.cfg) behind
# pushgate-proxy (UDP and TCP, memory store, the default per-source rate limit: 30 requests per
# 2 s, then blocked 120 s). sipp sends valid REGISTERs (register.xml: one AOR per call, response
# time per call) at BENCH_RATE per second for BENCH_SECONDS, twice:
#   1. alone (the baseline);
#   2. with hostile_load.py sending BENCH_HOSTILE_SHARE (10%) as many hostile messages per
#      second beside it: a REGISTER flood from one source address (127.0.0.2, the rate
#      limiter's case) and, from 250 other loopback addresses (each under the limit, so their
#      messages reach the parser), malformed (mutated) messages, oversized ones (65,000-byte
#      datagrams, 100 KB TCP messages) and datagrams of thousands of short header lines.
# The valid sipp source (127.0.0.1:<its port>) is listed in sip.trusted_backends, only so that
# the rate limiter exempts the whole valid load (in production it comes from many phones, each
# under the limit); everything else from 127.0.0.1 would share its budget.
#
# Output: the last line
#   BENCH hostile valid_ratio=<x.xx> valid_p99_ms=<n> crashes=<0|1> valid_rps=<n>
#         baseline_rps=<n> baseline_p99_ms=<n> valid_failed=<n> hostile_sent=<n>
#         flood_blocked=<n> invalid_counted=<n>
# valid_ratio: valid REGISTERs answered (200) per second with the hostile traffic over the same
# without (goal >= 0.9); valid_p99_ms: the 99th percentile of their response times with it;
# crashes: 1 when pushgate-proxy died. Logs and per-call times in $BENCH_OUT.
# Environment: BUILD_DIR (build/default), BENCH_OUT ($BUILD_DIR/bench/hostile), BENCH_RATE
# (1000), BENCH_SECONDS (20), BENCH_HOSTILE_SHARE (0.10), BENCH_SEED (1313), KEEP_TMP=1;
# BENCH_HOSTILE_ONLY=<flood|malformed|oversized|many_headers> sends that kind only (diagnosis).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD_DIR=$(cd "${BUILD_DIR:-$ROOT/build/default}" && pwd)
BENCH_OUT=${BENCH_OUT:-$BUILD_DIR/bench/hostile}
RATE=${BENCH_RATE:-1000}
SECONDS_PER_RUN=${BENCH_SECONDS:-20}
SHARE=${BENCH_HOSTILE_SHARE:-0.10}
SEED=${BENCH_SEED:-1313}
REGISTRAR_CFG=$ROOT/deploy/kamailio/kamailio.cfg

fail() { echo "bench/hostile: FAIL: $*" >&2; exit 1; }
for tool in kamailio sipp ss awk python3 curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (./dev setup installs it)"
done
cmake --build "$BUILD_DIR" --target pushgate-proxy >/dev/null ||
  fail "cannot build pushgate-proxy in $BUILD_DIR"
PROXY=$BUILD_DIR/proxy/pushgate-proxy
[[ -x $PROXY ]] || fail "$PROXY missing after building target pushgate-proxy"

mkdir -p "$BENCH_OUT"
# shellcheck source=bench/lib.sh
source "$HERE/../lib.sh"
use_tmp_dir pushgate-bench-hostile
need_proxy_keys "$PROXY" sip.listen sip.backend sip.masquerade_secret sip.trusted_backends \
  sip.max_pending_registers limits.rate_limit_requests push.target admin.listen log.level

KPORT=$(port); PPORT=$(port); SPORT=$(port); APORT=$(port)
CALLS=$(awk -v r="$RATE" -v s="$SECONDS_PER_RUN" 'BEGIN {printf "%d", r * s}')
HOSTILE_RATE=$(awk -v r="$RATE" -v s="$SHARE" 'BEGIN {printf "%.1f", r * s}')

start_kamailio registrar "$REGISTRAR_CFG" 512 16 -A "CTL_SOCKET=\"unix:$TMP/registrar_ctl\"" \
  -l "udp:127.0.0.1:$KPORT"
cat >"$TMP/proxy.toml" <<EOF
[sip]
listen = ["udp:127.0.0.1:$PPORT", "tcp:127.0.0.1:$PPORT"]
backend = "sip:127.0.0.1:$KPORT"
masquerade_secret = "bench-hostile-secret"
max_pending_registers = 100000
# The valid load's one source port: exempt from the per-source rate limit (see the header).
trusted_backends = ["127.0.0.1:$SPORT"]

[store]
kind = "memory"

[push]
target = ""

[admin]
listen = "127.0.0.1:$APORT"

[log]
level = "warn"
EOF
"$PROXY" --config "$TMP/proxy.toml" >"$TMP/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_listen u "$KPORT" "registrar kamailio"
wait_listen u "$PPORT" "pushgate-proxy"
wait_listen t "$APORT" "pushgate-proxy admin endpoint"

metric() {  # metric NAME [LABEL_FILTER]: the sum of NAME's series (matching the filter)
  curl -sf "http://127.0.0.1:$APORT/metrics" |
    awk -v n="$1" -v f="${2:-}" '($1 == n || index($1, n "{") == 1) && index($1, f) {s += $NF}
      END {print s + 0}'
}

# valid NAME: one run of the valid load; prints "answered_per_s p99_ms successful failed
# proxy_cpu_pct".
valid() {
  local name=$1 out t0 t1
  out=$TMP/$name.out
  mkdir -p "$TMP/$name"
  local c0 c1
  c0=$(ticks "$PROXY_PID")
  t0=$(date +%s.%N)
  (cd "$TMP/$name" && sipp -nostdin -sf "$HERE/register.xml" -key prefix "$name" -i 127.0.0.1 \
    -p "$SPORT" -t u1 -r "$RATE" -m "$CALLS" -l 20000 -timeout $((SECONDS_PER_RUN * 3 + 20))s \
    -trace_rtt -rtt_freq 1 -trace_err -error_file "$TMP/$name.err" "127.0.0.1:$PPORT" \
    >"$out" 2>&1) || true
  t1=$(date +%s.%N)
  c1=$(ticks "$PROXY_PID")
  local ok failed p99
  read -r ok failed _ _ < <(sipp_stats "$out" REGISTER "$CALLS")
  # Per-call response times (ms) of RTD 1: "date_ms;response_time_ms;rtd_no" lines.
  cat "$TMP/$name"/*_rtt.csv >"$BENCH_OUT/${name}_rtt.csv" 2>/dev/null || true
  p99=$(awk -F';' '$2 ~ /^[0-9.]+$/ {print $2}' "$BENCH_OUT/${name}_rtt.csv" | sort -n |
    awk '{v[NR] = $1} END {if (NR == 0) {print "nan"; exit} i = int(NR * 0.99); if (i < NR * 0.99) i++;
      if (i < 1) i = 1; printf "%.1f", v[i]}')
  awk -v ok="$ok" -v failed="$failed" -v p99="$p99" -v wall="$(echo "$t1 - $t0" | bc)" \
    -v cpu=$((c1 - c0)) -v hz="$HZ" \
    'BEGIN {printf "%.0f %s %d %d %.0f\n", ok / wall, p99, ok, failed, 100 * cpu / hz / wall}'
  cp "$out" "$BENCH_OUT/$name.sipp.txt"
}

echo "bench/hostile: baseline, $CALLS REGISTERs at $RATE/s" >&2
read -r base_rps base_p99 base_ok base_failed base_cpu < <(valid baseline)
echo "bench/hostile: baseline: $base_ok answered ($base_failed failed), $base_rps/s, p99 $base_p99 ms, pushgate-proxy CPU $base_cpu%" >&2
kill -0 "$PROXY_PID" 2>/dev/null || fail "pushgate-proxy died during the baseline run"

invalid0=$(metric pushgate_proxy_invalid_messages_total)
echo "bench/hostile: again with $HOSTILE_RATE hostile messages/s (seed $SEED)" >&2
python3 "$HERE/hostile_load.py" --target "127.0.0.1:$PPORT" --rate "$HOSTILE_RATE" \
  --seed "$SEED" ${BENCH_HOSTILE_ONLY:+--only "$BENCH_HOSTILE_ONLY"} --seeds "$ROOT"/tests/fuzz/sip_message/corpus/* >"$TMP/hostile.out" 2>&1 &
HOSTILE_PID=$!
PIDS+=("$HOSTILE_PID")
sleep 1  # the flood source is blocked by now; the hostile traffic runs through the whole run
read -r with_rps with_p99 with_ok with_failed with_cpu < <(valid hostile)
kill -TERM "$HOSTILE_PID" 2>/dev/null || true
wait "$HOSTILE_PID" 2>/dev/null || true
cat "$TMP/hostile.out" >&2
cp "$TMP/hostile.out" "$BENCH_OUT/hostile_load.txt"
echo "bench/hostile: with hostile traffic: $with_ok answered ($with_failed failed), $with_rps/s, p99 $with_p99 ms, pushgate-proxy CPU $with_cpu%" >&2

crashes=0
if ! kill -0 "$PROXY_PID" 2>/dev/null; then
  crashes=1
  tail -n 30 "$TMP/proxy.log" >&2
  cp "$TMP/proxy.log" "$BENCH_OUT/proxy.log"
  echo "bench/hostile: pushgate-proxy DIED under hostile traffic (log: $BENCH_OUT/proxy.log)" >&2
fi
hostile_sent=$(sed -n 's/^hostile_load: sent \([0-9]*\).*/\1/p' "$TMP/hostile.out")
flood_blocked=na
invalid=na
if ((crashes == 0)); then
  flood_blocked=$(metric pushgate_proxy_rate_limit_total 'verdict="blocked"')
  invalid=$(($(metric pushgate_proxy_invalid_messages_total) - invalid0))
fi
ratio=$(awk -v a="$with_rps" -v b="$base_rps" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "nan"}')
echo "BENCH hostile valid_ratio=$ratio valid_p99_ms=$with_p99 crashes=$crashes valid_rps=$with_rps" \
  "baseline_rps=$base_rps baseline_p99_ms=$base_p99 valid_failed=$with_failed" \
  "proxy_cpu_pct=$with_cpu baseline_proxy_cpu_pct=$base_cpu" \
  "hostile_sent=${hostile_sent:-0} flood_blocked=$flood_blocked invalid_counted=$invalid"
