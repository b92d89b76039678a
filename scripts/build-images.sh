#!/usr/bin/env bash
# Builds pushgate's container images: pushgate-builder (compiles once), then pushgate-proxy,
# pushgate-pusher and pushgate-emulator from the unchanged docker/*.Dockerfile.
#
#   scripts/build-images.sh [IMAGE...]
# IMAGE: proxy pusher emulator (the services, compiled by the shared builder image), redis and
# kamailio (compose stack/demo peers from Debian packages), sipp (the stack test's phones).
# Default: proxy pusher emulator redis kamailio.
#
# Environment:
#   CONTAINER_ENGINE   podman (default when installed) or docker
#   IMAGE_PREFIX       default "localhost/"   (images are ${IMAGE_PREFIX}pushgate-<name>:${IMAGE_TAG})
#   IMAGE_TAG          default "latest"
#   APT_MIRROR         Debian mirror for the base image (default: read from the host's apt sources)
#   BUILD_JOBS         parallel compile jobs inside the builder (default: nproc)
#   SKIP_ENGINE_SETUP  1 = do not write /etc/containers/containers.conf.d (see docs/deploy.md)
#
# No base image can be pulled here: when the engine has no debian:bookworm-slim, the script makes
# one with debootstrap from the host's configured Debian mirror and imports it. The base image's
# apt sources are the host's, so the Dockerfiles' apt-get works wherever the host's apt works.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '\033[1m[images]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ENGINE=${CONTAINER_ENGINE:-}
if [[ -z $ENGINE ]]; then
  if command -v podman >/dev/null; then ENGINE=podman
  elif command -v docker >/dev/null; then ENGINE=docker
  else die "neither podman nor docker is installed (./dev images installs podman)"; fi
fi
PREFIX=${IMAGE_PREFIX:-localhost/}
TAG=${IMAGE_TAG:-latest}
JOBS=${BUILD_JOBS:-$(nproc)}
BASE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# Engine set-up (podman, as root). What this sandbox needs, found by trying (docs/deploy.md):
#  - crun refuses cgroup v1/v2 hybrid hosts ("cgroups in hybrid mode not supported"): use runc.
#  - the default RLIMIT_NOFILE podman asks for is above the host's hard limit ("setrlimit
#    RLIMIT_NOFILE: Operation not permitted"): default_ulimits within the hard limits.
#  - netavark + aardvark-dns give compose services DNS names (CNI has no DNS plugin here).
#  - no systemd/journald: cgroupfs manager, file events logger.
# The drop-in is rewritten only when its content changes (idempotent).
setup_podman() {
  [[ $ENGINE == podman ]] || return 0
  [[ ${SKIP_ENGINE_SETUP:-0} == 1 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    log "not root: leaving containers.conf alone (see docs/deploy.md for the settings)"
    return 0
  fi
  local nofile nproc runtime="" backend=""
  nofile=$(ulimit -Hn); [[ $nofile == unlimited ]] && nofile=1048576
  ((nofile > 1048576)) && nofile=1048576
  nproc=$(ulimit -Hu); [[ $nproc == unlimited ]] && nproc=4096
  ((nproc > 4096)) && nproc=4096
  # cgroup v2 mounted beside v1 controllers = hybrid: crun cannot run there, runc can.
  if [[ -d /sys/fs/cgroup/unified ]] && grep -q ' /sys/fs/cgroup/unified cgroup2 ' /proc/mounts; then
    command -v runc >/dev/null || die "hybrid cgroups need runc (apt-get install runc)"
    runtime=runc
  fi
  command -v netavark >/dev/null || [[ -x /usr/lib/podman/netavark ]] && backend=netavark
  local conf=/etc/containers/containers.conf.d/50-pushgate.conf
  local want
  want=$(
    echo "# Written by pushgate scripts/build-images.sh (see docs/deploy.md)."
    echo "[containers]"
    echo "default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]"
    echo "[engine]"
    [[ -n $runtime ]] && echo "runtime = \"$runtime\""
    echo "cgroup_manager = \"cgroupfs\""
    echo "events_logger = \"file\""
    if [[ -n $backend ]]; then
      echo "[network]"
      echo "network_backend = \"$backend\""
    fi
  )
  if [[ ! -f $conf ]] || [[ $(cat "$conf") != "$want" ]]; then
    mkdir -p "$(dirname "$conf")"
    printf '%s\n' "$want" >"$conf"
    log "wrote $conf"
  fi
}

# ---------------------------------------------------------------------------------------------
# The host's Debian apt sources as "URI SUITE" lines (bookworm suites only), from
# /etc/apt/sources.list (one-line format) and /etc/apt/sources.list.d/*.{list,sources}.
host_debian_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                       if ($(i+1) ~ /^bookworm/) print $i, $(i+1) }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no")
                              for (u in uris) for (s in suites) if (s ~ /^bookworm/) print u, s
                            types = ""; enabled = ""; delete uris; delete suites }
         /^[ \t]*#/ { next }
         /^[ \t]*$/ { flush(); next }
         { key = tolower($1); sub(/:$/, "", key)
           if (key == "types") { $1 = ""; types = $0 }
           else if (key == "enabled") enabled = tolower($2)
           else if (key == "uris") for (i = 2; i <= NF; i++) uris[$i] = 1
           else if (key == "suites") for (i = 2; i <= NF; i++) suites[$i] = 1 }
         END { flush() }' "$f"
  done
}

base_image_exists() {
  if [[ $ENGINE == podman ]]; then
    podman image exists "$BASE"
  else
    docker image inspect "$BASE" >/dev/null 2>&1
  fi
}

make_base_image() {
  base_image_exists && return 0
  command -v debootstrap >/dev/null || die "debootstrap is not installed (./dev images installs it)"
  [[ $(id -u) -eq 0 ]] || die "creating $BASE with debootstrap needs root"
  local sources mirror
  sources=$(host_debian_sources | sort -u)
  mirror=${APT_MIRROR:-$(awk '$2 == "bookworm" { print $1; exit }' <<<"$sources")}
  [[ -n $mirror ]] || die "no bookworm mirror in the host's apt sources; set APT_MIRROR"
  [[ -n $sources ]] || sources="$mirror bookworm"
  local dir
  dir=$(mktemp -d /var/tmp/pushgate-rootfs.XXXXXX)
  trap 'rm -rf "$dir"; trap - RETURN' RETURN
  log "creating $BASE: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 ||
    { tail -20 "$dir.log" >&2; rm -f "$dir.log"; die "debootstrap failed"; }
  rm -f "$dir.log"
  # The host's Debian sources (same mirror, updates and security suites) for apt in builds.
  rm -f "$dir/etc/apt/sources.list"
  mkdir -p "$dir/etc/apt/sources.list.d"
  while read -r uri suite; do
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n\n' \
      "$uri" "$suite" /usr/share/keyrings/debian-archive-keyring.gpg
  done <<<"$sources" >"$dir/etc/apt/sources.list.d/debian.sources"
  # Slim like the official image: no docs/man pages in later installs, no apt caches.
  mkdir -p "$dir/etc/dpkg/dpkg.cfg.d" "$dir/etc/apt/apt.conf.d"
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' >"$dir/etc/dpkg/dpkg.cfg.d/90-slim"
  printf '%s\n' 'APT::Install-Recommends "false";' 'APT::Install-Suggests "false";' \
    >"$dir/etc/apt/apt.conf.d/90-slim"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* \
    "$dir"/usr/share/man/* "$dir"/usr/share/info/*
  tar -C "$dir" -c . | $ENGINE import - "docker.io/library/$BASE" >/dev/null
  $ENGINE tag "docker.io/library/$BASE" "$BASE"
  log "imported $BASE ($(du -sh "$dir" | cut -f1))"
}

build() {  # build DOCKERFILE IMAGE [build args...]
  local file=$1 image=$2
  shift 2
  local args=(build -f "$ROOT/docker/$file" -t "$image" --network=host "$@")
  if [[ $ENGINE == podman ]]; then
    # docker format keeps HEALTHCHECK (the OCI format drops it); never pull: the base is local.
    args+=(--format docker --pull=never)
  fi
  $ENGINE "${args[@]}" "$ROOT"
}

# Binaries each image needs from the builder.
targets_for() {
  case $1 in
    proxy) echo pushgate-proxy ;;
    pusher) echo pushgate-pusher pushgate-push ;;
    emulator) echo pushgate-emulator ;;
    redis | kamailio | sipp) ;;  # Debian packages only, no builder
    *) die "unknown image $1" ;;
  esac
}

main() {
  local t0=$SECONDS t
  IMAGES=("$@")
  ((${#IMAGES[@]})) || IMAGES=(proxy pusher emulator redis kamailio)
  for i in "${IMAGES[@]}"; do
    [[ -f $ROOT/docker/$i.Dockerfile ]] || die "no docker/$i.Dockerfile"
  done
  setup_podman
  if [[ $ENGINE == podman ]] && ! podman info >/dev/null 2>&1; then
    die "podman does not work here: $(podman info 2>&1 | tail -1)"
  fi
  make_base_image
  local targets=() i
  for i in "${IMAGES[@]}"; do
    read -r -a tt <<<"$(targets_for "$i")"
    targets+=("${tt[@]}")
  done
  local builder="${PREFIX}pushgate-builder:${TAG}"
  if ((${#targets[@]})); then
    t=$SECONDS
    log "building $builder (targets: ${targets[*]})"
    build builder.Dockerfile "$builder" --build-arg "TARGETS=${targets[*]}" --build-arg "JOBS=$JOBS"
    log "builder done in $((SECONDS - t)) s"
  fi
  for i in "${IMAGES[@]}"; do
    t=$SECONDS
    build "$i.Dockerfile" "${PREFIX}pushgate-$i:${TAG}" --build-arg "BUILDER=$builder"
    log "pushgate-$i done in $((SECONDS - t)) s"
  done
  $ENGINE images --filter "reference=${PREFIX}pushgate-*" >&2 || true
  log "all images built in $((SECONDS - t0)) s"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
