#!/usr/bin/env bash
# Generates the demo credentials the compose stack mounts as secrets (deploy/secrets/, never
# committed): a masquerade secret, pusher API keys, an APNs token key (P-256 .p8) and an FCM
# service account (RSA) with their public halves for the emulator, and a demo CA with a TLS
# certificate for the emulator's name. Existing files are kept (pass --force to regenerate).
#
#   deploy/gen-demo-secrets.sh [--force] [DIR]      (DIR defaults to deploy/secrets)
#
# For production, put your real files under the same names instead: apns_key (.p8 from Apple),
# fcm_service_account (JSON from Firebase), masquerade_secret, pusher_api_keys and
# pusher_client_api_key; the emulator/demo CA files are not needed then.
set -euo pipefail
force=0
if [[ ${1:-} == --force ]]; then force=1; shift; fi
DIR=${1:-$(cd "$(dirname "$0")" && pwd)/secrets}
mkdir -p "$DIR"
cd "$DIR"
# The images run as uid/gid 10001; secrets are bind-mounted with the host's ownership.
OWNER_GID=10001

have() { [[ $force == 0 && -s $1 ]]; }
rand() { openssl rand -hex "$1"; }

have masquerade_secret || rand 32 >masquerade_secret
if ! have pusher_client_api_key || ! have pusher_api_keys; then
  key=$(rand 24)
  printf '%s\n' "$key" >pusher_client_api_key
  printf '# client-name api-key apps (bundle ids / FCM project ids, or *)\nproxy %s *\n' "$key" \
    >pusher_api_keys
fi

if ! have apns_key; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out apns_key 2>/dev/null
  openssl pkey -in apns_key -pubout -out apns_public_key
fi

if ! have fcm_service_account; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out fcm_key.pem 2>/dev/null
  openssl pkey -in fcm_key.pem -pubout -out fcm_public_key
  pem=$(awk '{ printf "%s\\n", $0 }' fcm_key.pem)
  cat >fcm_service_account <<JSON
{
  "type": "service_account",
  "project_id": "pushgate-demo",
  "private_key_id": "demo$(rand 8)",
  "private_key": "$pem",
  "client_email": "pusher@pushgate-demo.iam.gserviceaccount.com",
  "client_id": "100000000000000000000",
  "token_uri": "https://emulator:8443/token"
}
JSON
  rm -f fcm_key.pem
fi

if ! have demo_ca || ! have emulator_tls_cert; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=pushgate demo CA" -keyout demo_ca.key -out demo_ca \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=emulator" \
    -keyout emulator_tls_key -out emulator.csr 2>/dev/null
  printf 'subjectAltName=DNS:emulator,DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >emulator.ext
  openssl x509 -req -in emulator.csr -CA demo_ca -CAkey demo_ca.key -CAcreateserial -days 3650 \
    -extfile emulator.ext -out emulator_tls_cert 2>/dev/null
  rm -f emulator.csr emulator.ext demo_ca.srl demo_ca.key
fi

# Readable by the containers' user, not by everyone.
chmod 0640 -- *
if [[ $(id -u) -eq 0 ]]; then chgrp "$OWNER_GID" -- *; else chmod 0644 -- *; fi
echo "demo secrets in $DIR"
