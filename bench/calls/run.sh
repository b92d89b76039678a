#!/usr/bin/env bash
# bench/calls: calls/s through the gateway to an awake phone, compared with a Kamailio stateful
# relay in the same run, plus the gateway's latency figures at BENCH_RATE calls/s.
#
# 1. Latency (calls_bench, one process: CallRouter on a real nta agent, the real pusher and the
#    APNs emulator on loopback): INVITE in -> push request at the emulator (p50/p99, push delay 0),
#    and re-registration -> INVITE out to the new contact (p50/p99), at BENCH_RATE calls/s.
# 2. Throughput with real peers on 127.0.0.1 (free ports), one call = INVITE, 200, ACK, BYE,
#    200 between a sipp caller (uac.xml) and a sipp phone (uas.xml) through the proxy under test:
#      registrar  deploy/kamailio/kamailio.cfg (usrloc in memory)
#      pushgate   pushgate-proxy (memory store, no pusher), backend = the registrar; the phone
#                 first REGISTERs through it (register.xml, FCM push parameters: an awake Android
#                 phone, whose push waits fork.push_delay_other and is cancelled by the 200), so
#                 the registrar holds the masqueraded contact (read with kamcmd ul.dump)
#      relay      bench/calls/relay.cfg: Kamailio record_route() + t_relay() to the phone, ACK and
#                 BYE by loose_route()
#    The caller sends its INVITEs straight to the proxy under test: to pushgate with the request
#    URI = the masqueraded contact the registrar holds (what the registrar would send after its
#    lookup), to the relay with the phone's own contact. Why not through the registrar: its
#    lookup and its own transaction would then be in pushgate's path only (the relay needs no
#    lookup), and on 2 shared cores its CPU would be taken from the proxy under test. So both
#    figures measure one stateful, record-routing hop between the same caller and phone; pushgate's
#    hop does its real work on top (masquerade check, binding lookup, fork, push timer, Via/
#    Record-Route handling). All calls go to one binding (one phone): per-call work is the same as
#    with many phones, and one sipp phone keeps the load generator's share of the CPU small.
#    Rates rise (BENCH_RATES), BENCH_STEP_SECONDS worth of calls per step, alternately through
#    pushgate and through the relay. A step passes when every call completed (no failed call) and
#    sipp sustained >= 95% of the asked rate (a failed step is tried once more); a target's figure
#    is the achieved rate of its highest passing step. CPU per call = CPU time of the target's processes (all kamailio workers for the
#    relay) / calls, from /proc.
#
# Output: one CSV row per step in $BENCH_OUT/calls_steps.csv (target, asked rate, calls,
# successful, failed, INVITE retransmissions, achieved rate, datagrams the kernel dropped on the
# target's, the phone's and the caller's UDP sockets, CPU % of the target, CPU us per call,
# passed), then the line
#   BENCH calls calls_per_s=<pushgate> kamailio_relay_calls_per_s=<n> ratio=<x.xx>
#         invite_to_push_p50_ms=.. invite_to_push_p99_ms=.. register_to_invite_p50_ms=..
#         register_to_invite_p99_ms=.. rate=<BENCH_RATE> errors=<calls_bench errors>
# Environment: BUILD_DIR (default build/default), BENCH_OUT (default $BUILD_DIR/bench/calls),
# BENCH_RATES ("500 1000 2000 ... 16000"), BENCH_STEP_SECONDS (3), BENCH_RELAY_CHILDREN (2: kamailio
# UDP workers of the relay), BENCH_RATE (200), BENCH_SLEEPING_CALLS (1000), BENCH_AWAKE_CALLS (0:
# calls_bench's in-process throughput, printed on stderr only), KEEP_TMP=1 keeps logs,
# BENCH_PERF=1 records `perf record -g` of pushgate-proxy during its highest asked step
# ($BENCH_OUT/pushgate.perf.data).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD_DIR=$(cd "${BUILD_DIR:-$ROOT/build/default}" && pwd)
BENCH_OUT=${BENCH_OUT:-$BUILD_DIR/bench/calls}
RATES=${BENCH_RATES:-"500 1000 2000 3000 4000 5000 6000 7000 8000 9000 10000 12000 14000 16000"}
STEP_SECONDS=${BENCH_STEP_SECONDS:-3}
RELAY_CHILDREN=${BENCH_RELAY_CHILDREN:-2}
REGISTRAR_CFG=$ROOT/deploy/kamailio/kamailio.cfg

fail() { echo "bench/calls: FAIL: $*" >&2; exit 1; }
for tool in kamailio kamcmd sipp ss awk bc; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (./dev setup installs it)"
done
cmake --build "$BUILD_DIR" --target pushgate-proxy calls_bench >/dev/null ||
  fail "cannot build pushgate-proxy and calls_bench in $BUILD_DIR"
PROXY=$BUILD_DIR/proxy/pushgate-proxy
[[ -x $PROXY ]] || fail "$PROXY missing after building target pushgate-proxy"

mkdir -p "$BENCH_OUT"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
use_tmp_dir pushgate-bench-calls

# 1. Latency figures, before the throughput steps load the machine.
"$ROOT/tests/fakes/make-test-credentials.sh" "$TMP/creds" >/dev/null
latency=$(cd "$ROOT" && "$BUILD_DIR/bench/calls/calls_bench" "$TMP/creds" "${BENCH_AWAKE_CALLS:-0}" \
  "${BENCH_SLEEPING_CALLS:-1000}" "${BENCH_RATE:-200}" 2>"$TMP/calls_bench.log" | tail -n 1) || {
  cat "$TMP/calls_bench.log" >&2
  fail "calls_bench failed"
}
[[ $latency == "BENCH calls "* ]] || { cat "$TMP/calls_bench.log" >&2; fail "calls_bench printed no BENCH line"; }
echo "calls_bench (in process): ${latency#BENCH calls }" >&2
field() { tr ' ' '\n' <<<"$latency" | awk -F= -v k="$1" '$1 == k {print $2}'; }

# The proxy's configuration keys used here must still exist.
need_proxy_keys "$PROXY" sip.listen sip.backend sip.masquerade_secret store.kind push.target \
  admin.listen log.level fork.push_delay_other

KPORT=$(port); PPORT=$(port); RPORT=$(port); CPORT=$(port); PHONE=$(port)

start_kamailio registrar "$REGISTRAR_CFG" 64 8 -A "CTL_SOCKET=\"unix:$TMP/registrar_ctl\"" \
  -l "udp:127.0.0.1:$KPORT"
start_kamailio relay "$HERE/relay.cfg" 1024 16 -A "PHONE=\"sip:127.0.0.1:$PHONE\"" \
  -l "udp:127.0.0.1:$RPORT" -n "$RELAY_CHILDREN"
RELAY_PID=$KAMAILIO_PID
write_proxy_config "$TMP/proxy.toml" "$PPORT" "$KPORT" bench-calls-secret
"$PROXY" --config "$TMP/proxy.toml" >"$TMP/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_listen u "$KPORT" "registrar kamailio"
wait_listen u "$RPORT" "relay kamailio"
wait_listen u "$PPORT" "pushgate-proxy"

# The phone registers through pushgate from the port its UAS scenario then listens on.
sipp -nostdin -sf "$HERE/register.xml" -key user bob -i 127.0.0.1 -p "$PHONE" -t u1 -m 1 \
  -timeout 10s -timeout_error -trace_err -error_file "$TMP/register.err" "127.0.0.1:$PPORT" \
  >"$TMP/register.out" 2>&1 || { tail -n 20 "$TMP/proxy.log" "$TMP/register.out" >&2; fail "the phone's REGISTER through pushgate got no 200"; }
kamcmd -s "unix:$TMP/registrar_ctl" ul.dump >"$TMP/uldump.txt" 2>&1 || { cat "$TMP/uldump.txt" >&2; fail "kamcmd ul.dump failed"; }
RURI=$(sed -n 's/^[[:space:]]*Address: //p' "$TMP/uldump.txt" | grep "pgw=" | head -n 1)
[[ $RURI == "sip:bob@127.0.0.1:$PPORT;"* ]] ||
  { cat "$TMP/uldump.txt" >&2; fail "the registrar holds no masqueraded contact of bob pointing at pushgate"; }
echo "masqueraded contact at the registrar: $RURI" >&2

# Load generators with 4 MiB socket buffers (sipp's default is 64 KiB): their drops would be
# blamed on the target's retransmissions.
sipp -nostdin -sf "$HERE/uas.xml" -i 127.0.0.1 -p "$PHONE" -t u1 -l 1000000 -buff_size 4194304 \
  -trace_err -error_file "$TMP/phone.err" >"$TMP/phone.out" 2>&1 &
PHONE_PID=$!
PIDS+=("$PHONE_PID")
wait_listen u "$PHONE" "the sipp phone"
echo "receive buffers: pushgate $(rcvbuf "$PPORT"), relay $(rcvbuf "$RPORT")," \
  "phone $(rcvbuf "$PHONE")" >&2

CSV=$BENCH_OUT/calls_steps.csv
echo "target,asked_cps,calls,successful,failed,invite_retransmissions,achieved_cps,target_udp_drops,phone_udp_drops,caller_udp_drops,target_cpu_pct,target_cpu_us_per_call,caller_cpu_pct,phone_cpu_pct,passed" >"$CSV"
LAST_RATE=${RATES##* }

# step TARGET PORT RURI RATE PID -> appends a CSV row; returns 0 when the step passed.
STEP=0
step() {
  local target=$1 tport=$2 ruri=$3 rate=$4 tpid=$5 calls out t0 t1 c0 c1 perf_pid=""
  STEP=$((STEP + 1))
  calls=$((rate * STEP_SECONDS))
  out=$TMP/step$STEP-$target-$rate.out
  local d0 d1 p0 p1 s0 s1
  d0=$(udp_drops "$tport"); p0=$(udp_drops "$PHONE"); s0=$(udp_drops "$CPORT")
  if [[ ${BENCH_PERF:-0} == 1 && $target == pushgate && $rate == "$LAST_RATE" ]]; then
    perf record -g -o "$BENCH_OUT/pushgate.perf.data" -p "$tpid" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  local u0 u1
  c0=$(ticks "$tpid"); u0=$(ticks "$PHONE_PID"); t0=$(date +%s.%N)
  # sipp may keep waiting for calls a saturated target lost: SIGINT ends it with its statistics.
  timeout -k 10 -s INT $((STEP_SECONDS * 3 + 30)) \
    sipp -nostdin -sf "$HERE/uac.xml" -key ruri "$ruri" -i 127.0.0.1 -p "$CPORT" -t u1 \
      -r "$rate" -m "$calls" -l 100000 -timeout $((STEP_SECONDS * 3 + 20))s -buff_size 4194304 \
      -trace_err -error_file "$TMP/step$STEP.err" "127.0.0.1:$tport" >"$out" 2>&1 &
  local sipp_pid=$! sipp_ticks=0 v
  # The caller's own CPU, sampled until it exits (its /proc entry goes with it).
  while kill -0 "$sipp_pid" 2>/dev/null; do
    v=$(ticks "$sipp_pid"); ((v > sipp_ticks)) && sipp_ticks=$v
    sleep 0.2
  done
  wait "$sipp_pid" || true
  t1=$(date +%s.%N); c1=$(ticks "$tpid"); u1=$(ticks "$PHONE_PID")
  if [[ -n $perf_pid ]]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true; fi
  d1=$(udp_drops "$tport"); p1=$(udp_drops "$PHONE"); s1=$(udp_drops "$CPORT")
  local ok failed retrans cps
  read -r ok failed retrans cps < <(sipp_stats "$out" INVITE "$calls")
  awk -v target="$target" -v rate="$rate" -v calls="$calls" -v wall="$(echo "$t1 - $t0" | bc)" \
      -v tcpu=$((c1 - c0)) -v ccpu="$sipp_ticks" -v pcpu=$((u1 - u0)) -v hz="$HZ" \
      -v tdrops=$((d1 - d0)) -v pdrops=$((p1 - p0)) -v sdrops=$((s1 - s0)) \
      -v ok="$ok" -v failed="$failed" -v retrans="$retrans" -v cps="$cps" 'BEGIN {
      passed = (failed == 0 && ok == calls && cps >= 0.95 * rate) ? 1 : 0
      printf "%s,%d,%d,%d,%d,%d,%.0f,%d,%d,%d,%.0f,%.0f,%.0f,%.0f,%d\n", target, rate, calls, ok,
             failed, retrans, cps, tdrops, pdrops, sdrops, 100 * tcpu / hz / wall,
             (ok > 0 ? 1e6 * tcpu / hz / ok : 0), 100 * ccpu / hz / wall, 100 * pcpu / hz / wall,
             passed
    }' >>"$CSV"
  tail -n 1 "$CSV" >&2
  [[ $(tail -n 1 "$CSV" | awk -F, '{print $NF}') == 1 ]]
}

# A failed step is tried once more (the cores are shared: one scheduling hiccup of another job
# should not end a target's run); two failures at a rate end it.
step_twice() { step "$@" || step "$@"; }

pushgate_best=0
relay_best=0
pushgate_on=1
relay_on=1
for rate in $RATES; do
  if ((pushgate_on)); then
    if step_twice pushgate "$PPORT" "$RURI" "$rate" "$PROXY_PID"; then
      pushgate_best=$rate
    else
      pushgate_on=0
    fi
    kill -0 "$PROXY_PID" 2>/dev/null || { tail -n 30 "$TMP/proxy.log" >&2; fail "pushgate-proxy died at $rate calls/s"; }
  fi
  if ((relay_on)); then
    if step_twice kamailio_relay "$RPORT" "sip:bob@127.0.0.1:$PHONE" "$rate" "$RELAY_PID"; then
      relay_best=$rate
    else
      relay_on=0
    fi
  fi
  kill -0 "$PHONE_PID" 2>/dev/null || { tail -n 30 "$TMP/phone.out" >&2; fail "the sipp phone died"; }
  ((pushgate_on || relay_on)) || break
done

pushgate_cps=$(best_achieved "$CSV" pushgate "$pushgate_best"); pushgate_cps=${pushgate_cps:-0}
relay_cps=$(best_achieved "$CSV" kamailio_relay "$relay_best"); relay_cps=${relay_cps:-0}
if ((pushgate_on && relay_on)); then
  echo "bench/calls: both passed the highest asked rate: the load generator is the limit, raise BENCH_RATES" >&2
fi
ratio=$(awk -v p="$pushgate_cps" -v r="$relay_cps" 'BEGIN {if (r > 0) printf "%.2f", p / r; else print "nan"}')
# CPU per call: whether a gap comes from work per call or from something else (drops, scheduling
# on the shared cores). At the highest rate both passed (fixed costs weigh less there), and the
# mean over each target's passing steps.
both=$((pushgate_best < relay_best ? pushgate_best : relay_best))
for t in pushgate kamailio_relay; do
  awk -F, -v t="$t" -v r="$both" '$1 == t && $NF == 1 {us += $12; n++} $1 == t && $2 == r {at = $12}
    END {if (n) printf "bench/calls: %s uses %.0f us CPU per call at %d calls/s (%.0f us, mean of %d passing steps)\n", t, at, r, us / n, n}' "$CSV" >&2
done
echo "steps: $CSV" >&2
echo "BENCH calls calls_per_s=$pushgate_cps kamailio_relay_calls_per_s=$relay_cps ratio=$ratio" \
  "invite_to_push_p50_ms=$(field invite_to_push_p50_ms) invite_to_push_p99_ms=$(field invite_to_push_p99_ms)" \
  "register_to_invite_p50_ms=$(field register_to_invite_p50_ms) register_to_invite_p99_ms=$(field register_to_invite_p99_ms)" \
  "rate=$(field rate) errors=$(field errors)"
