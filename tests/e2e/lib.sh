# Shell helpers shared by the end-to-end tests and benchmarks (source it; the caller defines
# `fail MESSAGE`).

# A free UDP+TCP port on 127.0.0.1 (random, checked against the listening sockets). Ports listed
# in $USED (" 123 456 ") are skipped: the caller's own picks not yet bound.
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 30000))
    [[ ${USED:-} == *" $p "* ]] && continue
    if ! ss -Hlnu "sport = :$p" | grep -q . && ! ss -Hlnt "sport = :$p" | grep -q .; then
      echo "$p"; return 0
    fi
  done
  fail "no free port found"
}
