#!/usr/bin/env bash
# Validates the deployment files offline (no containers, no cluster):
#  - deploy/docker-compose.yml: `docker-compose config` (schema, interpolation; podman-compose 1.0
#    has no `config` command) plus check_manifests.py's compose rules (pusher scalable, demo
#    profile, declared secrets);
#  - deploy/k8s: `kubectl kustomize` with demo secrets, then check_manifests.py's rules; when an
#    API server is reachable, also `kubectl create --dry-run=client` and `--dry-run=server`
#    (kubectl needs the server's API discovery even for a client dry run);
#  - the services' config files (compose and k8s ConfigMaps) use only keys that the built
#    binaries' --dump-default lists (binaries passed as arguments; a missing one is reported).
#   validate_test.sh [PROXY_BIN PUSHER_BIN EMULATOR_BIN]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CHECK=(/usr/bin/python3 "$ROOT/tests/e2e/deploy/check_manifests.py")
TMP=$(mktemp -d /tmp/pushgate-validate.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
note() { echo "note: $*"; }

/usr/bin/python3 -c 'import yaml, tomllib' 2>/dev/null ||
  { echo "FAIL: /usr/bin/python3 with yaml and tomllib is needed (apt-get install python3-yaml)" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "FAIL: kubectl is not installed" >&2; exit 1; }

# --- compose -----------------------------------------------------------------------------------
if command -v docker-compose >/dev/null; then
  if docker-compose -f "$ROOT/deploy/docker-compose.yml" --profile demo config >"$TMP/compose.yml" 2>"$TMP/compose.err"; then
    "${CHECK[@]}" compose "$TMP/compose.yml" || fail "compose rules"
    PUSHER_REPLICAS=3 docker-compose -f "$ROOT/deploy/docker-compose.yml" config >"$TMP/compose3.yml"
    grep -q 'replicas: 3' "$TMP/compose3.yml" || fail "PUSHER_REPLICAS=3 does not reach deploy.replicas"
  else
    cat "$TMP/compose.err" >&2
    fail "docker-compose config rejects deploy/docker-compose.yml"
  fi
else
  note "docker-compose not installed: schema check skipped, rules checked on the raw file"
  "${CHECK[@]}" compose "$ROOT/deploy/docker-compose.yml" || fail "compose rules"
fi

# --- kubernetes --------------------------------------------------------------------------------
cp -r "$ROOT/deploy/k8s" "$TMP/k8s"
rm -rf "$TMP/k8s/secrets"
"$ROOT/deploy/gen-demo-secrets.sh" "$TMP/k8s/secrets" >/dev/null
if kubectl kustomize "$TMP/k8s" >"$TMP/k8s.yaml" 2>"$TMP/k8s.err"; then
  # --- config keys against the binaries' defaults ----------------------------------------------
  mkdir -p "$TMP/defaults"
  dump() {  # dump NAME BIN
    if [[ -n ${2:-} && $2 != - && -x $2 ]]; then
      "$2" --dump-default >"$TMP/defaults/$1.toml" 2>"$TMP/dump.err" ||
        { cat "$TMP/dump.err" >&2; fail "$2 --dump-default failed"; }
    else
      note "no $1 binary: its config keys are not checked against --dump-default"
    fi
  }
  dump proxy "${1:-}"
  dump pusher "${2:-}"
  dump emulator "${3:-}"
  PUSHGATE_DEFAULTS_DIR="$TMP/defaults" "${CHECK[@]}" k8s "$TMP/k8s.yaml" || fail "kubernetes rules"
  for name in proxy pusher emulator; do
    [[ -f $TMP/defaults/$name.toml ]] || continue
    "${CHECK[@]}" config "$ROOT/deploy/config/$name.toml" "$TMP/defaults/$name.toml" ||
      fail "deploy/config/$name.toml has keys the service does not know"
  done
  if timeout 10 kubectl version >/dev/null 2>&1; then
    kubectl create --dry-run=client -f "$TMP/k8s.yaml" >/dev/null || fail "kubectl create --dry-run=client"
    kubectl create --dry-run=server -f "$TMP/k8s.yaml" >/dev/null || fail "kubectl create --dry-run=server"
  else
    note "no Kubernetes API server reachable: kubectl create --dry-run skipped (it needs API discovery)"
  fi
else
  cat "$TMP/k8s.err" >&2
  fail "kubectl kustomize deploy/k8s"
fi

if ((fails)); then
  echo "$fails check(s) failed" >&2
  exit 1
fi
echo "PASS: deployment files valid"
