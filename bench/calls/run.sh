#!/usr/bin/env bash
# bench/calls: calls/s through the gateway's call half to awake phones, and latency of
# INVITE in -> push request at the emulator and re-registration -> INVITE out, at BENCH_RATE
# calls/s (push delay 0). In one process (calls_bench): CallRouter on a real nta agent, the real
# pusher and the APNs emulator on loopback. Ends with:
#   BENCH calls calls_per_s=.. invite_to_push_p50_ms=.. invite_to_push_p99_ms=..
#         register_to_invite_p50_ms=.. register_to_invite_p99_ms=.. rate=.. errors=..
# Environment: BUILD_DIR (default build/default), BENCH_AWAKE_CALLS (5000),
# BENCH_SLEEPING_CALLS (1000), BENCH_RATE (200).
# Not measured yet: Kamailio's stateful relay in the same run (the issue's comparison).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/default}
cmake --build "$BUILD_DIR" --target calls_bench >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$ROOT/tests/fakes/make-test-credentials.sh" "$TMP" >/dev/null
cd "$ROOT"
"$BUILD_DIR/bench/calls/calls_bench" "$TMP" "${BENCH_AWAKE_CALLS:-5000}" \
  "${BENCH_SLEEPING_CALLS:-1000}" "${BENCH_RATE:-200}" 2>"$TMP/stderr.log" | tail -1 || {
  cat "$TMP/stderr.log" >&2
  exit 1
}
