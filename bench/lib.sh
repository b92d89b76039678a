# shellcheck shell=bash
# Shell helpers shared by the sipp benchmarks (bench/register, bench/calls). Source it after
# defining `fail MESSAGE`; it sources tests/e2e/lib.sh (port, use_tmp_dir, wait_listen,
# start_kamailio, need_proxy_keys).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

# write_proxy_config FILE PORT BACKEND_PORT SECRET [SIP_LINE...]: pushgate-proxy on UDP
# 127.0.0.1:PORT relaying to the registrar on BACKEND_PORT, memory store, no pusher, quiet;
# SIP_LINEs are added to its [sip] section.
write_proxy_config() {
  local file=$1 port=$2 backend=$3 secret=$4
  shift 4
  local extra
  extra=$(printf '%s\n' "$@")
  cat >"$file" <<EOF
[sip]
listen = ["udp:127.0.0.1:$port"]
backend = "sip:127.0.0.1:$backend"
masquerade_secret = "$secret"
$extra

[store]
kind = "memory"

[push]
target = ""

[admin]
listen = ""

[log]
level = "warn"

[limits]
# The load generator is one source address: no per-source rate limit.
rate_limit_requests = 0
EOF
}

# sipp_stats OUT METHOD CALLS: "successful failed retransmissions calls_per_s" of a sipp run,
# from its final statistics in OUT (no count of failed calls: the CALLS not successful).
sipp_stats() {
  awk -v method="$2" -v calls="$3" '
    /Successful call/ {ok = $NF}
    /Failed call/ {failed = $NF}
    $0 ~ method " ---------->" {n = 0; for (i = 3; i <= NF; ++i) if ($i ~ /^[0-9]+$/ && ++n == 2) retrans = $i}
    /Call Rate/ {cps = $(NF - 1)}
    END {
      if (ok == "") ok = 0
      if (failed == "") failed = calls - ok
      print ok, failed, retrans + 0, cps + 0
    }' "$1"
}

# rcvbuf PORT: the receive buffer size (rb...) of the UDP socket listening on PORT.
rcvbuf() { ss -Hlnum "sport = :$1" | grep -o 'rb[0-9]*' | head -n 1; }

# stat_ticks PID: utime+stime of one process from /proc/PID/stat, or nothing (status 1) when it
# has exited. One read of the file, no test before it: a process can exit between the two.
stat_ticks() {
  local stat
  local -a f
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  # Fields after "PID (COMM) " (COMM may hold spaces and parentheses): state is f[0], so
  # utime (field 14) is f[11] and stime (field 15) f[12].
  read -ra f <<<"${stat##*) }"
  [[ ${f[11]:-} =~ ^[0-9]+$ && ${f[12]:-} =~ ^[0-9]+$ ]] || return 1
  echo $((f[11] + f[12]))
}

# CPU ticks (utime+stime) of a process and its children (kamailio forks its workers). Processes
# that have exited count for nothing: a sampler that outlives its process gets 0 from it, and
# the caller keeps what it sampled before.
ticks() {
  local pids p t total=0
  pids="$1 $(ps -o pid= --ppid "$1" 2>/dev/null | tr '\n' ' ')"
  for p in $pids; do
    t=$(stat_ticks "$p") || continue
    total=$((total + t))
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
