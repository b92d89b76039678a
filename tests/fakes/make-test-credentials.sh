#!/usr/bin/env bash
# Creates throw-away credentials for tests and `./dev run`, with the openssl CLI only:
#   ca.pem ca.key                     test CA
#   server.pem server.key             server certificate for 127.0.0.1, ::1 and localhost
#   apns-key.p8 apns-key.pub.pem      APNs token-auth key (EC P-256, PKCS#8) and its public key
#   client-ca.pem client-ca.key       CA of APNs client certificates
#   apns-client.pem apns-client.key   APNs client certificate, UID=$APNS_BUNDLE
#   fcm-sa.key fcm-sa.pub.pem         FCM service-account RSA key (PKCS#8) and its public key
#   fcm-service-account.json          service-account JSON (type, project_id, private_key, ...)
#   credentials.env                   shell variables naming all of the above
# Usage: make-test-credentials.sh OUTDIR
# Environment: APNS_TEAM_ID, APNS_KEY_ID, APNS_BUNDLE, FCM_PROJECT, FCM_CLIENT_EMAIL, TOKEN_URI.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
mkdir -p "$out"
cd "$out"
umask 077

APNS_TEAM_ID=${APNS_TEAM_ID:-TEAM123456}
APNS_KEY_ID=${APNS_KEY_ID:-KEY1234567}
APNS_BUNDLE=${APNS_BUNDLE:-com.example.phone}
FCM_PROJECT=${FCM_PROJECT:-pushgate-test}
FCM_CLIENT_EMAIL=${FCM_CLIENT_EMAIL:-pusher@${FCM_PROJECT}.iam.gserviceaccount.com}
TOKEN_URI=${TOKEN_URI:-https://oauth2.googleapis.com/token}

ossl() { openssl "$@" 2>/dev/null; }

# Test CA and server certificate.
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 3650 -subj "/O=pushgate test/CN=pushgate test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
  -subj "/O=pushgate test/CN=localhost"
cat >server.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EOF
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days 3650 -extfile server.ext

# APNs token-auth key: a .p8 is an unencrypted PKCS#8 EC P-256 key.
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out apns-key.p8
ossl pkey -in apns-key.p8 -pubout -out apns-key.pub.pem

# APNs certificate auth: client CA and a client certificate naming the bundle id.
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client-ca.key \
  -out client-ca.pem -days 3650 -subj "/O=pushgate test/CN=pushgate test APNs client CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout apns-client.key \
  -out apns-client.csr -subj "/UID=${APNS_BUNDLE}/CN=Apple Push Services: ${APNS_BUNDLE}/O=pushgate test"
cat >client.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
EOF
ossl x509 -req -in apns-client.csr -CA client-ca.pem -CAkey client-ca.key -CAcreateserial \
  -out apns-client.pem -days 3650 -extfile client.ext

# FCM service account: RSA 2048 in PKCS#8, as Google issues them.
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out fcm-sa.key
ossl pkey -in fcm-sa.key -pubout -out fcm-sa.pub.pem
private_key_json=$(awk '{printf "%s\\n", $0}' fcm-sa.key)
key_id=$(openssl rand -hex 20)
cat >fcm-service-account.json <<EOF
{
  "type": "service_account",
  "project_id": "${FCM_PROJECT}",
  "private_key_id": "${key_id}",
  "private_key": "${private_key_json}",
  "client_email": "${FCM_CLIENT_EMAIL}",
  "client_id": "100000000000000000000",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "${TOKEN_URI}"
}
EOF

cat >credentials.env <<EOF
CRED_DIR=$PWD
APNS_TEAM_ID=${APNS_TEAM_ID}
APNS_KEY_ID=${APNS_KEY_ID}
APNS_BUNDLE=${APNS_BUNDLE}
APNS_KEY_P8=$PWD/apns-key.p8
APNS_KEY_PUB=$PWD/apns-key.pub.pem
APNS_CLIENT_CERT=$PWD/apns-client.pem
APNS_CLIENT_KEY=$PWD/apns-client.key
CLIENT_CA=$PWD/client-ca.pem
SERVER_CERT=$PWD/server.pem
SERVER_KEY=$PWD/server.key
CA_CERT=$PWD/ca.pem
FCM_PROJECT=${FCM_PROJECT}
FCM_CLIENT_EMAIL=${FCM_CLIENT_EMAIL}
FCM_SERVICE_ACCOUNT=$PWD/fcm-service-account.json
FCM_PUBLIC_KEY=$PWD/fcm-sa.pub.pem
EOF
rm -f ./*.csr ./*.ext ./*.srl
chmod 644 ./*.pem credentials.env
echo "$PWD"
