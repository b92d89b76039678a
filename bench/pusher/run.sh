#!/usr/bin/env bash
# bench/pusher: pushes per second through SendStream -> pushgate-pusher -> pushgate-emulator,
# against h2load straight at the same emulator (the ceiling), then the latency at half the
# measured rate. Ends with one line:
#   BENCH pusher pushes_per_s=.. h2load_ceiling_rps=.. ratio=.. emulator_bound_rps=..
#         ratio_to_emulator_bound=.. p50_ms=.. p99_ms=.. half_rate=.. half_p99_ms=..
#         emulator_half_p99_ms=.. half_added_p99_ms=.. rate_10000_p99_ms=.. emulator_10000_p99_ms=..
#         rate_10000_added_p99_ms=.. pusher_cpu_us=.. emulator_cpu_us=..
#         bench_cpu_us=.. layout=tested_on_cpu_A|none [unpinned_pushes_per_s=.. unpinned_ratio=..
#         unpinned_pusher_cpu_us=..] errors=..
# emulator_bound_rps, ratio_to_emulator_bound: see EMULATOR_BOUND below (the noise-proof ceiling).
# pushes_per_s: best of the full-speed runs (closed loop, BENCH_WINDOW unanswered pushes per stream;
# p50/p99 are that run's latencies, mostly queueing behind the window). h2load_ceiling_rps: best of
# three h2load runs. half_rate: half the lower of the two runs of the best pool size.
# Latency (open loop, end to end through the pusher), at half_rate and at 10,000/s (half the
# 20,000 pushes/s target): *_p99_ms is the pusher path's p99, emulator_*_p99_ms h2load's p99
# straight at the emulator at the same rate, and *_added_p99_ms the difference: the latency the
# pusher adds (the target: <= 5 ms).
# pusher_cpu_us, emulator_cpu_us, bench_cpu_us: CPU microseconds per push of each process in the
# best full-speed run (the three share this machine's cores, so pushes/s is bounded by their sum).
# errors: pushes not ACCEPTED over all measured runs.
#
# The ceiling: h2load sends the pusher's request (same path shape, headers, JWT and payload) over
# the same TLS to the same emulator, with -c H2LOAD_CLIENTS (4, the largest pool size tried)
# connections of -m H2LOAD_STREAMS (100) streams each; the emulator's single event loop thread is
# what bounds it, for h2load as for the pusher.
# Environment (all optional):
#   BUILD_DIR            build directory (default build/default)
#   BENCH_PUSHES         pushes of the full-speed run (default 200000)
#   BENCH_STREAMS        SendStream calls (default 4), BENCH_CHANNELS gRPC connections (default 2)
#   BENCH_WINDOW         unanswered pushes per stream (default 500); pusher_bench refills a full
#                        window in bursts of a tenth of it (its --refill)
#   BENCH_POOL_SIZES     max_connections_per_pool values to try; the best is run a second time and
#                        used for the half-rate run (default "1 2 4")
#   BENCH_HALF_SECONDS   duration of the half-rate run (default 10)
#   EMULATOR_THREADS     emulator event loop threads (default 1)
#   BENCH_KEEP=1         keep the temporary directory (logs, config)
#   BENCH_PUSHER_PRELOAD LD_PRELOAD for the pusher only, for experiments, e.g.
#                        /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (default: none)
#   BENCH_PERF=1         perf-record the pusher during the full-speed runs (report kept in the
#                        temporary directory, implies BENCH_KEEP=1)
#   BENCH_PIN            1 (default, with 2 CPUs or more): the measured runs use a fixed CPU
#                        layout, 0: the scheduler places every thread (see below)
#
# CPU layout. Left to the scheduler, the pusher's threads (gRPC's and the HTTP/2 pool's) hand
# every push to each other across this machine's two cores in some runs and not in others: the
# same build then costs 7.5 or 10.5 us of CPU per push, from one run to the next. So the measured
# runs give the tool under test one CPU, A, the same for both sides: h2load for the ceiling, the
# pusher for the pusher path (as a Kubernetes pod with a whole CPU under the static CPU manager
# policy, or `taskset`, would run it). The emulator and pusher_bench run anywhere. Two more
# full-speed runs with no layout give unpinned_pushes_per_s and unpinned_ratio (the ceiling is the
# best of every h2load run, pinned or not).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/default}
[[ -d $BUILD_DIR ]] || { echo "[bench pusher] FAILED: no build directory $BUILD_DIR" >&2; exit 1; }
BUILD_DIR=$(cd "$BUILD_DIR" && pwd) # the pusher runs in a temporary directory
PUSHES=${BENCH_PUSHES:-200000}
STREAMS=${BENCH_STREAMS:-4}
CHANNELS=${BENCH_CHANNELS:-2}
WINDOW=${BENCH_WINDOW:-500}
POOL_SIZES=${BENCH_POOL_SIZES:-"1 2 4"}
HALF_SECONDS=${BENCH_HALF_SECONDS:-10}
EMULATOR_THREADS=${EMULATOR_THREADS:-1}
H2LOAD_CLIENTS=${H2LOAD_CLIENTS:-4}
H2LOAD_STREAMS=${H2LOAD_STREAMS:-100}

log() { printf '[bench pusher %3ss] %s\n' "$SECONDS" "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

EMULATOR=$BUILD_DIR/pusher/emulator/pushgate-emulator
PUSHER=$BUILD_DIR/pusher/pushgate-pusher
PUSH_CLI=$BUILD_DIR/pusher/cli/pushgate-push
BENCH=$BUILD_DIR/bench/pusher/pusher_bench
JWT=$BUILD_DIR/bench/pusher/bench_jwt
command -v h2load >/dev/null || die "h2load not found (Debian package nghttp2-client)"
# CPU A: the first this process may run on (a layout needs a second one for the rest).
ALLOWED_CPUS=()
for range in $(sed -nE 's/^Cpus_allowed_list:\s*//p' /proc/self/status | tr ',' ' '); do
  for ((cpu = ${range%-*}; cpu <= ${range#*-}; cpu++)); do ALLOWED_CPUS+=("$cpu"); done
done
PIN=${BENCH_PIN:-1}
if ((PIN == 1 && ${#ALLOWED_CPUS[@]} < 2)); then
  log "only ${#ALLOWED_CPUS[@]} CPU(s): no fixed layout"
  PIN=0
fi
CPU_A=${ALLOWED_CPUS[0]}
PINNED=$PIN # the layout of the runs under way (0 for the unpinned ones)
# Runs "$@" on CPU $1 when the runs are pinned.
on_cpu() {
  local cpu=$1
  shift
  if ((PINNED == 1)); then taskset -c "$cpu" "$@"; else "$@"; fi
}
if [[ -f $BUILD_DIR/build.ninja || -f $BUILD_DIR/Makefile ]]; then
  # Cheap when up to date; makes `BUILD_DIR=... bench/pusher/run.sh` work on its own.
  log "building the benchmark's targets (no-op when up to date)"
  cmake --build "$BUILD_DIR" --target pushgate-emulator pushgate-pusher pushgate-push \
    pusher_bench bench_jwt >"${TMPDIR:-/tmp}/pushgate-bench-pusher-build.log" 2>&1 ||
    log "warning: rebuilding the benchmark's targets failed (using the binaries as they are):" \
      "$(tail -3 "${TMPDIR:-/tmp}/pushgate-bench-pusher-build.log")"
fi
for b in "$EMULATOR" "$PUSHER" "$PUSH_CLI" "$BENCH" "$JWT"; do
  [[ -x $b ]] || die "$b is missing (build the project first)"
done

[[ ${BENCH_PERF:-0} == 1 ]] && BENCH_KEEP=1
TMP=$(mktemp -d /tmp/pushgate-bench-pusher-XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# Waits (up to $2 seconds) until the file $1 contains a line matching $3; prints that line.
wait_for_line() {
  local file=$1 timeout=$2 pattern=$3 i
  for ((i = 0; i < timeout * 10; i++)); do
    if grep -m1 -E "$pattern" "$file" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# CPU time (ms) a process used so far: utime + stime from /proc/PID/stat (fields 14 and 15 of
# what follows "PID (COMM) "), read once. A process that has exited has no figure: 0, and a note.
CLK_TCK=$(getconf CLK_TCK)
cpu_ms() {
  local stat
  local -a f
  if { read -r stat <"/proc/$1/stat"; } 2>/dev/null; then
    read -ra f <<<"${stat##*) }"
    if [[ ${f[11]:-} =~ ^[0-9]+$ && ${f[12]:-} =~ ^[0-9]+$ ]]; then
      echo $(((f[11] + f[12]) * 1000 / CLK_TCK))
      return
    fi
  fi
  log "process $1 has exited: its CPU time is not counted"
  echo 0
}
# CPU microseconds per item: $1 ms of CPU over $2 items.
per_item_us() { awk -v ms="$1" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? ms * 1000 / n : 0) }'; }
log "load average before start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews every figure)"

# Credentials: APNs token key (team TEAM123456, key KEY1234567), server certificate and its CA.
"$ROOT/tests/fakes/make-test-credentials.sh" "$TMP/creds" >/dev/null || die "making credentials"
# shellcheck disable=SC1091
source "$TMP/creds/credentials.env"
APP="$APNS_TEAM_ID.$APNS_BUNDLE.voip"
TOPIC="$APNS_BUNDLE.voip"

# --- emulator -------------------------------------------------------------------------------
"$EMULATOR" --listen 127.0.0.1:0 --control off --threads "$EMULATOR_THREADS" --max-records 1000 \
  --tls-cert "$SERVER_CERT" --tls-key "$SERVER_KEY" \
  --apns-key "$APNS_TEAM_ID:$APNS_KEY_ID:$APNS_KEY_PUB" --apns-topic "$APNS_TEAM_ID:$APNS_BUNDLE" \
  --log-level warn >"$TMP/emulator.out" 2>"$TMP/emulator.err" &
EMULATOR_PID=$!
PIDS+=("$EMULATOR_PID")
line=$(wait_for_line "$TMP/emulator.out" 10 '^EMULATOR ') ||
  die "the emulator never printed its ports: $(tail -5 "$TMP/emulator.err")"
EMU_ADDR=$(sed -E 's/.*h2=([^ ]+).*/\1/' <<<"$line")
EMU_URL="https://$EMU_ADDR"
log "emulator on $EMU_URL (threads=$EMULATOR_THREADS)"

# --- h2load ceiling ---------------------------------------------------------------------------
# The request the pusher sends for a VoIP push: same path, headers and a payload of that shape.
JWT_TOKEN=$("$JWT" "$APNS_TEAM_ID" "$APNS_KEY_ID" "$APNS_KEY_P8") || die "signing the h2load JWT"
DEVICE_TOKEN=$(openssl rand -hex 32)
printf '{"aps":{},"call-id":"bench-1@example.org","display-name":"Alice","from-uri":"sip:alice@example.org"}' \
  >"$TMP/payload.json"
H2LOAD_ARGS=(
  -H "apns-push-type: voip" -H "apns-topic: $TOPIC" -H "apns-priority: 10"
  -H "apns-expiration: 0" -H "authorization: bearer $JWT_TOKEN"
  -d "$TMP/payload.json" "$EMU_URL/3/device/$DEVICE_TOKEN"
)
# Runs h2load ($@: extra arguments); sets H2_RPS (integer), H2_OK (2xx answers), H2_TOTAL.
run_h2load() {
  local out
  out=$(on_cpu "$CPU_A" h2load "$@" "${H2LOAD_ARGS[@]}" 2>&1) || die "h2load failed: $out"
  echo "$out" >>"$TMP/h2load.txt"
  H2_RPS=$(sed -nE 's/^finished in [^,]+, ([0-9]+)(\.[0-9]*)? req\/s.*/\1/p' <<<"$out")
  H2_OK=$(sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p' <<<"$out")
  H2_TOTAL=$(sed -nE 's/^requests: ([0-9]+) total.*/\1/p' <<<"$out")
  [[ -n $H2_RPS && -n $H2_OK && -n $H2_TOTAL ]] || die "cannot parse h2load output: $out"
  ((H2_OK == H2_TOTAL)) || die "h2load: only $H2_OK of $H2_TOTAL requests got 2xx: $out"
}
run_h2load -n 2000 -c 1 -m 10 # warm-up; checks that the emulator accepts the request
# The best of several runs, two now and one after the pusher's full-speed runs: other work on
# the machine only ever slows a run down, and a ceiling measured in a busy moment would flatter
# the ratio.
CEILING=0
# EMULATOR_BOUND: what one emulator thread sustains at the CPU cost per request it showed under
# h2load (1e6 / us per request, the cheapest run): a cross-check that CPU contention from other
# work cannot lower. A measured ceiling well below it was disturbed, and flatters the ratio.
EMULATOR_BOUND=0
ceiling_run() {
  local emu_cpu0 us
  emu_cpu0=$(cpu_ms "$EMULATOR_PID")
  run_h2load -n "$PUSHES" -c "$H2LOAD_CLIENTS" -m "$H2LOAD_STREAMS"
  us=$(per_item_us $(($(cpu_ms "$EMULATOR_PID") - emu_cpu0)) "$H2_TOTAL")
  log "h2load run $1: $H2_RPS req/s (-c $H2LOAD_CLIENTS -m $H2LOAD_STREAMS, $H2_TOTAL" \
    "requests, all 2xx); emulator CPU $us us/request; load average $(cut -d' ' -f1 /proc/loadavg)"
  if ((H2_RPS > CEILING)); then CEILING=$H2_RPS; fi
  local bound
  bound=$(awk -v us="$us" 'BEGIN { printf "%d", (us > 0 ? 1e6 / us : 0) }')
  if ((bound > EMULATOR_BOUND)); then EMULATOR_BOUND=$bound; fi
}
ceiling_run 1
ceiling_run 2

# --- pusher -----------------------------------------------------------------------------------
PUSHER_PID="" PUSHER_STARTS=0 PUSHER_LOG=""
start_pusher() { # $1 = max_connections_per_pool
  cat >"$TMP/pusher.toml" <<EOF
[grpc]
listen = "127.0.0.1:0"
[apns]
token_keys = ["$APNS_TEAM_ID:$APNS_KEY_ID:$APNS_KEY_P8"]
production_url = "$EMU_URL"
sandbox_url = "$EMU_URL"
[http2]
ca_file = "$CA_CERT"
max_connections_per_pool = $1
[admin]
listen = ""
[log]
level = "warn"
components = "pusher=info"
EOF
  PUSHER_STARTS=$((PUSHER_STARTS + 1))
  PUSHER_LOG=$TMP/pusher-$PUSHER_STARTS.log # a fresh file: never read an older pusher's port
  # In $TMP with core dumps on: a crash leaves a core there (kept with BENCH_KEEP=1).
  (
    cd "$TMP" && ulimit -c unlimited 2>/dev/null
    export LD_PRELOAD=${BENCH_PUSHER_PRELOAD:-}
    if ((PINNED == 1)); then exec taskset -c "$CPU_A" "$PUSHER" --config "$TMP/pusher.toml"; fi
    exec "$PUSHER" --config "$TMP/pusher.toml"
  ) >"$TMP/pusher-$PUSHER_STARTS.out" 2>"$PUSHER_LOG" &
  PUSHER_PID=$!
  PIDS+=("$PUSHER_PID")
  local line
  line=$(wait_for_line "$PUSHER_LOG" 10 'listening on .*\(port [0-9]+') ||
    die "the pusher never said where it listens: $(tail -5 "$PUSHER_LOG")"
  PUSHER_ADDR=127.0.0.1:$(sed -E 's/.*\(port ([0-9]+).*/\1/' <<<"$line")
  local i
  for ((i = 0; i < 50; i++)); do
    "$PUSH_CLI" --target "$PUSHER_ADDR" --timeout 1s --health >/dev/null 2>&1 && break
    sleep 0.1
  done
  ((i < 50)) || die "the pusher at $PUSHER_ADDR never reported SERVING"
}
stop_pusher() { # SIGTERM (graceful), SIGKILL after 10 s
  local i
  kill "$PUSHER_PID" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$PUSHER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$PUSHER_PID" 2>/dev/null || true
  local rc=0
  wait "$PUSHER_PID" 2>/dev/null || rc=$?
  if ((rc != 0)); then
    PUSHER_FAILURES=$((PUSHER_FAILURES + 1))
    log "WARNING: the pusher exited with status $rc on SIGTERM (>128: killed by signal" \
      "$((rc - 128))); its log: $(tail -3 "$PUSHER_LOG" | tr '\n' ' ')"
    ls "$TMP"/core* >/dev/null 2>&1 && log "  core dump in $TMP (BENCH_KEEP=1 keeps it)"
  fi
}
PUSHER_FAILURES=0

# Runs pusher_bench; prints its RESULT line ($@: extra pusher_bench arguments).
run_bench() {
  local out
  out=$("$BENCH" --target "$PUSHER_ADDR" --app "$APP" --streams "$STREAMS" --channels "$CHANNELS" \
    "$@" 2>"$TMP/bench.err") || die "pusher_bench $*: $out $(tail -5 "$TMP/bench.err")"
  grep -m1 '^RESULT ' <<<"$out" || die "pusher_bench printed no RESULT: $out"
}
field() { sed -nE "s/.* $2=([^ ]+).*/\\1/p" <<<"$1"; }

ERRORS=0
BEST_RATE=0 BEST_POOL="" BEST_LINE="" BEST_CPU=""
UNPINNED_RATE=0 UNPINNED_CPU=""
# One full-speed run: $1 = max_connections_per_pool, $2 = "unpinned" for the runs with no layout
# (they are reported apart and choose nothing).
full_speed_run() {
  local pool=$1 kind=${2:-} line rate emu_cpu0 pusher_cpu0 perf_pid="" tag
  start_pusher "$pool"
  run_bench --count 5000 --window 100 >/dev/null # opens the HTTP/2 connections, signs the JWT
  emu_cpu0=$(cpu_ms "$EMULATOR_PID") pusher_cpu0=$(cpu_ms "$PUSHER_PID")
  if [[ ${BENCH_PERF:-0} == 1 ]]; then
    tag=pool$pool-$SECONDS
    perf record -F 999 --call-graph dwarf,16384 -p "$PUSHER_PID" -o "$TMP/perf-$tag.data" \
      >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
  fi
  line=$(run_bench --count "$PUSHES" --window "$WINDOW")
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf report -i "$TMP/perf-$tag.data" --no-children --percent-limit 0.7 --stdio \
      >"$TMP/perf-$tag.txt" 2>/dev/null || true
    log "perf report: $TMP/perf-$tag.txt"
  fi
  log "pusher max_connections_per_pool=$pool$([[ $kind == unpinned ]] && echo " (no CPU layout)"): $line"
  local pusher_us emu_us bench_us
  pusher_us=$(per_item_us $(($(cpu_ms "$PUSHER_PID") - pusher_cpu0)) "$PUSHES")
  emu_us=$(per_item_us $(($(cpu_ms "$EMULATOR_PID") - emu_cpu0)) "$PUSHES")
  bench_us=$(field "$line" cpu_us_per_push)
  log "  CPU per push: pusher $pusher_us us, emulator $emu_us us, pusher_bench $bench_us us;" \
    "load average $(cut -d' ' -f1 /proc/loadavg)"
  stop_pusher
  ERRORS=$((ERRORS + $(field "$line" errors)))
  rate=$(field "$line" pushes_per_s)
  if [[ $kind == unpinned ]]; then
    if ((rate > UNPINNED_RATE)); then UNPINNED_RATE=$rate UNPINNED_CPU=$pusher_us; fi
    return 0
  fi
  RATES[$pool]="${RATES[$pool]:-} $rate"
  if ((rate > BEST_RATE)); then
    BEST_RATE=$rate BEST_POOL=$pool BEST_LINE=$line
    BEST_CPU="pusher_cpu_us=$pusher_us emulator_cpu_us=$emu_us bench_cpu_us=$bench_us"
  fi
}
declare -A RATES # max_connections_per_pool -> rates of its runs
for pool in $POOL_SIZES; do full_speed_run "$pool"; done
[[ -n $BEST_POOL ]] || die "no pusher run accepted a push"
full_speed_run "$BEST_POOL" # best of two for the chosen size, as for h2load
ceiling_run 3
if ((PIN == 1)); then
  log "the same without a CPU layout (the scheduler places every thread):"
  PINNED=0
  ceiling_run 4
  full_speed_run "$BEST_POOL" unpinned
  full_speed_run "$BEST_POOL" unpinned
  PINNED=1
fi
# The latency run uses half the rate the best pool size sustained in both of its runs (the lower
# one): half of a lucky peak could already overload the pusher on a busy machine.
SUSTAINED=$(tr ' ' '\n' <<<"${RATES[$BEST_POOL]}" | grep . | sort -n | head -1)
log "best: $BEST_RATE pushes/s with max_connections_per_pool=$BEST_POOL (its runs:${RATES[$BEST_POOL]})"

# --- half rate: latency -----------------------------------------------------------------------
HALF_RATE=$((SUSTAINED / 2))
start_pusher "$BEST_POOL"
run_bench --count 5000 --window 100 >/dev/null
HALF_LINE=$(run_bench --rate "$HALF_RATE" --duration "$HALF_SECONDS")
log "pusher at $HALF_RATE/s (max_connections_per_pool=$BEST_POOL): $HALF_LINE"
stop_pusher
ERRORS=$((ERRORS + $(field "$HALF_LINE" errors)))

# Emulator-direct p99 (ms) at rate $1 for HALF_SECONDS, for comparison: h2load over as many
# connections as the pusher's pool (--rps is per client); its log file has one line per request
# (start time, status, microseconds to the end of the response).
emulator_direct_p99() {
  local rate=$1 clients=$BEST_POOL log_file=$TMP/h2load-$1.log
  on_cpu "$CPU_A" h2load -n $((rate * HALF_SECONDS)) -c "$clients" -m "$H2LOAD_STREAMS" \
    --rps $((rate / clients)) --log-file "$log_file" "${H2LOAD_ARGS[@]}" \
    >>"$TMP/h2load.txt" 2>&1 || die "h2load at $rate/s failed"
  cut -f3 "$log_file" | sort -n |
    awk '{v[NR]=$1} END {i=int(0.99*(NR-1)+0.5)+1; printf "%.3f", v[i]/1000}'
}
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
EMU_HALF_P99=$(emulator_direct_p99 "$HALF_RATE")
HALF_ADDED=$(minus "$(field "$HALF_LINE" p99_ms)" "$EMU_HALF_P99")
log "at $HALF_RATE/s: p99 through the pusher $(field "$HALF_LINE" p99_ms) ms, emulator direct" \
  "(h2load) ${EMU_HALF_P99} ms: the pusher adds $HALF_ADDED ms"

# --- the target's own rate: half of 20,000 pushes/s ---------------------------------------------
TARGET_RATE=${BENCH_TARGET_RATE:-10000}
start_pusher "$BEST_POOL"
run_bench --count 5000 --window 100 >/dev/null
TARGET_LINE=$(run_bench --rate "$TARGET_RATE" --duration "$HALF_SECONDS")
log "pusher at $TARGET_RATE/s: $TARGET_LINE"
stop_pusher
ERRORS=$((ERRORS + $(field "$TARGET_LINE" errors)))
EMU_TARGET_P99=$(emulator_direct_p99 "$TARGET_RATE")
TARGET_ADDED=$(minus "$(field "$TARGET_LINE" p99_ms)" "$EMU_TARGET_P99")
log "at $TARGET_RATE/s: p99 through the pusher $(field "$TARGET_LINE" p99_ms) ms, emulator" \
  "direct (h2load) ${EMU_TARGET_P99} ms: the pusher adds $TARGET_ADDED ms"

((PUSHER_FAILURES == 0)) || log "WARNING: the pusher did not stop cleanly $PUSHER_FAILURES time(s)"
P50=$(field "$BEST_LINE" p50_ms)
P99=$(field "$BEST_LINE" p99_ms)
HALF_P99=$(field "$HALF_LINE" p99_ms)
RATIO=$(awk -v a="$BEST_RATE" -v b="$CEILING" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
BOUND_RATIO=$(awk -v a="$BEST_RATE" -v b="$EMULATOR_BOUND" \
  'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
if ((CEILING * 10 < EMULATOR_BOUND * 9)); then
  log "WARNING: the h2load ceiling ($CEILING req/s) is below 90% of what the emulator's CPU cost" \
    "per request allows ($EMULATOR_BOUND req/s): other work disturbed every h2load run, and" \
    "ratio=$RATIO flatters the pusher; ratio_to_emulator_bound=$BOUND_RATIO is the safer figure"
fi
UNPINNED_FIELDS=""
if ((PIN == 1)); then
  UNPINNED_FIELDS="unpinned_pushes_per_s=$UNPINNED_RATE unpinned_ratio=$(awk -v a="$UNPINNED_RATE" \
    -v b="$CEILING" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') unpinned_pusher_cpu_us=$UNPINNED_CPU"
fi
echo "BENCH pusher pushes_per_s=$BEST_RATE h2load_ceiling_rps=$CEILING ratio=$RATIO" \
  "emulator_bound_rps=$EMULATOR_BOUND ratio_to_emulator_bound=$BOUND_RATIO p50_ms=$P50" \
  "p99_ms=$P99 half_rate=$HALF_RATE half_p99_ms=$HALF_P99 emulator_half_p99_ms=$EMU_HALF_P99" \
  "half_added_p99_ms=$HALF_ADDED rate_${TARGET_RATE}_p99_ms=$(field "$TARGET_LINE" p99_ms)" \
  "emulator_${TARGET_RATE}_p99_ms=$EMU_TARGET_P99 rate_${TARGET_RATE}_added_p99_ms=$TARGET_ADDED" \
  "$BEST_CPU layout=$([[ $PIN == 1 ]] && echo "tested_on_cpu_$CPU_A" || echo none)" \
  "$UNPINNED_FIELDS errors=$ERRORS"
