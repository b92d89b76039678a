# shellcheck shell=bash
# Shell helpers shared by the sipp benchmarks (bench/register, bench/calls). Source it after
# defining `fail MESSAGE`; it sources tests/e2e/lib.sh (free_port).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

USED=${USED:-" "}
# A free port, remembered in $USED so the next pick differs.
port() { local p; p=$(free_port); USED+="$p "; echo "$p"; }

# wait_listen PROTO(u|t) PORT WHAT: waits up to 10 s for a listener.
wait_listen() {
  for _ in $(seq 1 100); do
    ss -Hln"$1" "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  fail "$3 never listened on port $2 (10 s)"
}

# CPU ticks (utime+stime) of a process and its children (kamailio forks its workers).
ticks() {
  local pids p total=0
  pids="$1 $(ps -o pid= --ppid "$1" 2>/dev/null | tr '\n' ' ')"
  for p in $pids; do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
  done
  echo "$total"
}
export HZ
HZ=$(getconf CLK_TCK)  # clock ticks per second, for ticks()

# Datagrams the kernel dropped on a UDP port (receive buffer full): /proc/net/udp "drops".
udp_drops() {
  awk -v port="$(printf ':%04X' "$1")" 'NR > 1 && substr($2, length($2) - 4) == port {d += $NF} END {print d + 0}' /proc/net/udp
}

# best_achieved CSV TARGET RATE: the achieved rate (column 7) of TARGET's passing step at RATE.
best_achieved() {
  awk -F, -v t="$2" -v r="$3" '$1 == t && $2 == r && $NF == 1 {print $7}' "$1" | tail -n 1
}
