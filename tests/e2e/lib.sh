# shellcheck shell=bash
# Shell helpers shared by the end-to-end tests and benchmarks (source it; the caller defines
# `fail MESSAGE`).

# A free UDP+TCP port on 127.0.0.1 (random, checked against the listening sockets). Ports listed
# in $USED (" 123 456 ") are skipped: the caller's own picks not yet bound.
# Picked below the kernel's ephemeral range (ip_local_port_range, 32768 by default): a port in
# it can be taken meanwhile by any test's client socket, which made parallel e2e tests fail with
# "Address already in use" now and then.
free_port() {
  local p low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  ((low > 12000)) || low=32768
  for _ in $(seq 1 100); do
    p=$((10000 + RANDOM % (low - 10000)))
    [[ ${USED:-} == *" $p "* ]] && continue
    if ! ss -Hlnu "sport = :$p" | grep -q . && ! ss -Hlnt "sport = :$p" | grep -q .; then
      echo "$p"; return 0
    fi
  done
  fail "no free port found"
}

USED=${USED:-" "}
# A free port, remembered in $USED so the next pick differs (free_port runs in a subshell).
port() { local p; p=$(free_port); USED+="$p "; echo "$p"; }

# start_proxy: pushgate-proxy ($PROXY) on $TMP/proxy.toml in the background, its output in
# $TMP/proxy.log; its pid in PROXY_PID and in PIDS (stopped on exit).
start_proxy() {
  # shellcheck disable=SC2153 # PROXY is set by the test script that sources this file
  "$PROXY" --config "$TMP/proxy.toml" >"$TMP/proxy.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
}

# use_tmp_dir NAME: a fresh $TMP (/tmp/NAME.XXXXXX) and an empty PIDS array; on exit every pid in
# PIDS is killed and waited for, and $TMP removed (KEEP_TMP=1 keeps it and says where).
use_tmp_dir() {
  TMP=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  trap cleanup_tmp_dir EXIT
}
cleanup_tmp_dir() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${KEEP_TMP:-0} != 1 ]]; then rm -rf "$TMP"; else echo "kept $TMP" >&2; fi
}

# wait_listen PROTO(u|t) PORT WHAT: waits up to 10 s for a listener.
wait_listen() {
  for _ in $(seq 1 100); do
    ss -Hln"$1" "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  fail "$3 never listened on port $2 (10 s)"
}

# start_kamailio NAME CFG SHM_MB PKG_MB [ARG...]: Kamailio in the foreground without default
# listeners (give -l ... in ARGs), run directory $TMP/NAME, log $TMP/NAME.log; sets
# KAMAILIO_PID and adds it to PIDS.
start_kamailio() {
  local name=$1 cfg=$2 shm=$3 pkg=$4
  shift 4
  mkdir -p "$TMP/$name"
  kamailio -f "$cfg" -DD -E -A NO_DEFAULT_LISTEN -Y "$TMP/$name" -m "$shm" -M "$pkg" "$@" \
    >"$TMP/$name.log" 2>&1 &
  KAMAILIO_PID=$!
  PIDS+=("$KAMAILIO_PID")
}

# need_proxy_keys PROXY SECTION.KEY...: fails naming the first key pushgate-proxy's schema no
# longer has (a renamed key would otherwise show as a confusing config error).
need_proxy_keys() {
  local proxy=$1 k
  shift
  "$proxy" --dump-default >"$TMP/default.toml" 2>&1 || fail "$proxy --dump-default failed"
  for k in "$@"; do
    awk -v s="[${k%%.*}]" -v k="${k#*.}" '$0 == s {in_s = 1; next} /^\[/ {in_s = 0}
         in_s && $1 == k && $2 == "=" {found = 1} END {exit !found}' "$TMP/default.toml" ||
      fail "pushgate-proxy has no key $k any more (see $proxy --dump-default); update $0"
  done
}
