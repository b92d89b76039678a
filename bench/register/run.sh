#!/usr/bin/env bash
# bench/register: REGISTER throughput at zero failures, pushgate vs a Kamailio stateful relay.
#
# In one run, on 127.0.0.1 with free ports:
#   registrar  deploy/kamailio/kamailio.cfg (usrloc in memory)
#   pushgate   pushgate-proxy (memory store, no pusher), backend = the registrar
#   relay      bench/register/relay.cfg: Kamailio t_relay()ing every request to the registrar
# sipp sends REGISTERs (register.xml: one unique AOR per call, RFC 8599 push parameters) at rising
# rates (BENCH_RATES), BENCH_STEP_SECONDS worth of calls per step, alternately through pushgate
# and through the relay. A step passes when every call got its 200 (no failed call, no timeout)
# and sipp sustained >= 95% of the asked rate; a target's figure is the highest rate it passed.
# The in-memory store's RSS growth per binding comes from proxy_store_memory_probe (1,000,000
# bindings) when the build has it.
#
# Output: one CSV row per step in $BENCH_OUT/register_steps.csv (target, asked rate, calls,
# successful, failed, retransmissions, achieved rate, datagrams the kernel dropped on the
# target's, the registrar's and sipp's UDP sockets, CPU % of the target's
# processes and of the registrar), then the line
#   BENCH register pushgate_rps=<n> kamailio_relay_rps=<n> ratio=<x.xx> rss_per_binding_bytes=<n>
# Environment: BUILD_DIR (default build/default), BENCH_OUT (default $BUILD_DIR/bench/register),
# BENCH_RATES ("2000 4000 ... 20000"), BENCH_STEP_SECONDS (3),
# BENCH_RELAY_CHILDREN (2, as the registrar: kamailio UDP worker processes of the relay),
# BENCH_PROBE_BINDINGS (1000000), KEEP_TMP=1 keeps logs.
# Diagnosis: BENCH_PROXY_RCVBUF=<bytes> runs pushgate-proxy with an LD_PRELOAD shim (built here
# with gcc) that sets SO_RCVBUF on its UDP sockets, as Kamailio does for itself (it raises its own
# to 512 KiB, the kernel doubles it); pushgate-proxy keeps the kernel default (212992) otherwise.
# BENCH_PROXY_ENV="VAR=value ..." adds environment variables to pushgate-proxy only (e.g.
# GLIBC_TUNABLES=glibc.malloc.top_pad=67108864 against heap growth in its loop thread's arena).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD_DIR=$(cd "${BUILD_DIR:-$ROOT/build/default}" && pwd)
BENCH_OUT=${BENCH_OUT:-$BUILD_DIR/bench/register}
RATES=${BENCH_RATES:-"2000 4000 6000 8000 10000 11000 12000 13000 14000 15000 16000 18000 20000"}
STEP_SECONDS=${BENCH_STEP_SECONDS:-3}
RELAY_CHILDREN=${BENCH_RELAY_CHILDREN:-2}
PROBE_BINDINGS=${BENCH_PROBE_BINDINGS:-1000000}
REGISTRAR_CFG=$ROOT/deploy/kamailio/kamailio.cfg

fail() { echo "bench/register: FAIL: $*" >&2; exit 1; }
for tool in kamailio sipp ss awk; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (./dev setup installs it)"
done
cmake --build "$BUILD_DIR" --target pushgate-proxy >/dev/null ||
  fail "cannot build pushgate-proxy in $BUILD_DIR"
PROXY=$BUILD_DIR/proxy/pushgate-proxy
[[ -x $PROXY ]] || fail "$PROXY missing after building target pushgate-proxy"
PROBE=""
if cmake --build "$BUILD_DIR" --target proxy_store_memory_probe >/dev/null 2>&1; then
  PROBE=$BUILD_DIR/bench/register/proxy_store_memory_probe
fi

mkdir -p "$BENCH_OUT"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
use_tmp_dir pushgate-bench-register

# The proxy's configuration keys used here must still exist.
need_proxy_keys "$PROXY" sip.listen sip.backend sip.masquerade_secret sip.max_pending_registers \
  store.kind push.target admin.listen log.level

KPORT=$(port); PPORT=$(port); RPORT=$(port); SPORT=$(port)

# Registrar: enough shared memory for every AOR of the run.
start_kamailio registrar "$REGISTRAR_CFG" 2048 16 -A "CTL_SOCKET=\"unix:$TMP/registrar_ctl\"" \
  -l "udp:127.0.0.1:$KPORT"
REGISTRAR_PID=$KAMAILIO_PID
start_kamailio relay "$HERE/relay.cfg" 1024 16 -A "REGISTRAR=\"sip:127.0.0.1:$KPORT\"" \
  -l "udp:127.0.0.1:$RPORT" -n "$RELAY_CHILDREN"
RELAY_PID=$KAMAILIO_PID
write_proxy_config "$TMP/proxy.toml" "$PPORT" "$KPORT" bench-register-secret \
  "max_pending_registers = 100000"
PRELOAD_ENV=(env)
if [[ -n ${BENCH_PROXY_RCVBUF:-} ]]; then
  command -v gcc >/dev/null || fail "BENCH_PROXY_RCVBUF needs gcc"
  gcc -shared -fPIC -O2 -o "$TMP/rcvbuf.so" -x c - -ldl <<'SHIM' || fail "cannot build the SO_RCVBUF shim"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>
int bind(int fd, const struct sockaddr* a, socklen_t l) {
  static int (*real)(int, const struct sockaddr*, socklen_t);
  if (!real) real = (int (*)(int, const struct sockaddr*, socklen_t))dlsym(RTLD_NEXT, "bind");
  int type = 0; socklen_t tl = sizeof type;
  const char* v = getenv("PUSHGATE_BENCH_RCVBUF");
  if (v && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_DGRAM) {
    int n = atoi(v);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
  }
  return real(fd, a, l);
}
SHIM
  PRELOAD_ENV+=("LD_PRELOAD=$TMP/rcvbuf.so" "PUSHGATE_BENCH_RCVBUF=$BENCH_PROXY_RCVBUF")
fi
read -r -a extra_env <<<"${BENCH_PROXY_ENV:-}"
PRELOAD_ENV+=("${extra_env[@]}")
"${PRELOAD_ENV[@]}" "$PROXY" --config "$TMP/proxy.toml" >"$TMP/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_listen u "$KPORT" "registrar kamailio"
wait_listen u "$RPORT" "relay kamailio"
wait_listen u "$PPORT" "pushgate-proxy"
echo "receive buffers: pushgate $(rcvbuf "$PPORT"), relay $(rcvbuf "$RPORT")," \
  "registrar $(rcvbuf "$KPORT")" >&2


CSV=$BENCH_OUT/register_steps.csv
echo "target,asked_rps,calls,successful,failed,retransmissions,achieved_rps,target_udp_drops,registrar_udp_drops,sipp_udp_drops,target_cpu_pct,registrar_cpu_pct,passed" >"$CSV"

# step TARGET PORT RATE PIDOFTARGET -> appends a CSV row; returns 0 when the step passed.
STEP=0
step() {
  local target=$1 tport=$2 rate=$3 tpid=$4 calls out t0 t1 c0 c1 r0 r1
  STEP=$((STEP + 1))
  calls=$((rate * STEP_SECONDS))
  out=$TMP/step$STEP-$target-$rate.out
  local d0 d1 k0 k1 s0 s1
  d0=$(udp_drops "$tport"); k0=$(udp_drops "$KPORT"); s0=$(udp_drops "$SPORT")
  c0=$(ticks "$tpid"); r0=$(ticks "$REGISTRAR_PID"); t0=$(date +%s.%N)
  sipp -nostdin -sf "$HERE/register.xml" -key prefix "s${STEP}u" -i 127.0.0.1 -p "$SPORT" -t u1 \
    -r "$rate" -m "$calls" -l 15000 -timeout $((STEP_SECONDS * 3 + 10))s \
    -trace_err -error_file "$TMP/step$STEP.err" "127.0.0.1:$tport" >"$out" 2>&1 || true
  t1=$(date +%s.%N); c1=$(ticks "$tpid"); r1=$(ticks "$REGISTRAR_PID")
  d1=$(udp_drops "$tport"); k1=$(udp_drops "$KPORT"); s1=$(udp_drops "$SPORT")
  local ok failed retrans cps
  read -r ok failed retrans cps < <(sipp_stats "$out" REGISTER "$calls")
  awk -v target="$target" -v rate="$rate" -v calls="$calls" -v wall="$(echo "$t1 - $t0" | bc)" \
      -v tcpu=$((c1 - c0)) -v rcpu=$((r1 - r0)) -v hz="$HZ" \
      -v tdrops=$((d1 - d0)) -v kdrops=$((k1 - k0)) -v sdrops=$((s1 - s0)) \
      -v ok="$ok" -v failed="$failed" -v retrans="$retrans" -v cps="$cps" 'BEGIN {
      passed = (failed == 0 && ok == calls && cps >= 0.95 * rate) ? 1 : 0
      printf "%s,%d,%d,%d,%d,%d,%.0f,%d,%d,%d,%.0f,%.0f,%d\n", target, rate, calls, ok, failed,
             retrans, cps, tdrops, kdrops, sdrops, 100 * tcpu / hz / wall, 100 * rcpu / hz / wall, passed
    }' >>"$CSV"
  tail -n 1 "$CSV" >&2
  [[ $(tail -n 1 "$CSV" | awk -F, '{print $NF}') == 1 ]]
}

pushgate_best=0
relay_best=0
pushgate_on=1
relay_on=1
for rate in $RATES; do
  if ((pushgate_on)); then
    if step pushgate "$PPORT" "$rate" "$PROXY_PID"; then pushgate_best=$rate; else pushgate_on=0; fi
    kill -0 "$PROXY_PID" 2>/dev/null || { tail -n 30 "$TMP/proxy.log" >&2; fail "pushgate-proxy died at $rate REGISTER/s"; }
  fi
  if ((relay_on)); then
    if step kamailio_relay "$RPORT" "$rate" "$RELAY_PID"; then relay_best=$rate; else relay_on=0; fi
  fi
  ((pushgate_on || relay_on)) || break
done
kill -0 "$REGISTRAR_PID" 2>/dev/null || fail "the registrar kamailio died"

# A figure is the achieved rate of the best passing step (0 when none passed).
pushgate_rps=$(best_achieved "$CSV" pushgate "$pushgate_best"); pushgate_rps=${pushgate_rps:-0}
relay_rps=$(best_achieved "$CSV" kamailio_relay "$relay_best"); relay_rps=${relay_rps:-0}
if ((pushgate_on && relay_on)); then
  echo "bench/register: both passed the highest asked rate: the load generator is the limit, raise BENCH_RATES" >&2
fi
ratio=$(awk -v p="$pushgate_rps" -v r="$relay_rps" 'BEGIN {if (r > 0) printf "%.2f", p / r; else print "nan"}')

rss=unavailable
if [[ -n $PROBE && -x $PROBE ]]; then
  "$PROBE" "$PROBE_BINDINGS" >"$TMP/probe.out" 2>&1 || { cat "$TMP/probe.out" >&2; fail "$PROBE failed"; }
  rss=$(awk '/bytes_per_binding=/ {for (i = 1; i <= NF; ++i) if ($i ~ /^bytes_per_binding=/) {sub(/.*=/, "", $i); printf "%.0f", $i}}' "$TMP/probe.out")
  [[ -n $rss ]] || { cat "$TMP/probe.out" >&2; fail "proxy_store_memory_probe printed no bytes_per_binding"; }
  cp "$TMP/probe.out" "$BENCH_OUT/memory_probe.txt"
fi
# CPU per REGISTER (all processes of the target), averaged over its passing steps: the figure that
# says whether a gap comes from work per request or from something else (drops, scheduling).
for t in pushgate kamailio_relay; do
  awk -F, -v t="$t" '$1 == t && $NF == 1 && $7 > 0 {us += $11 * 10000 / $7; n++}
    END {if (n) printf "bench/register: %s uses %.0f us CPU per REGISTER (mean of %d passing steps)\n", t, us / n, n}' "$CSV" >&2
done
echo "steps: $CSV" >&2
echo "BENCH register pushgate_rps=$pushgate_rps kamailio_relay_rps=$relay_rps ratio=$ratio rss_per_binding_bytes=$rss"
