#!/usr/bin/env bash
# Installs the dependencies, builds, and runs huginn-proxy in the foreground
# on the demo configuration (etc/demo.toml):
#   https://localhost:8443/  (TLS, HTTP/1.1 and HTTP/2)  →  demo echo backend on 127.0.0.1:9000
#   http://127.0.0.1:8080/   (cleartext HTTP/1.1 and h2c) →  the same backend
# A self-signed certificate for localhost is generated on the first run.
# The backend answers with a JSON echo of the request it received, so
#   curl -sk https://localhost:8443/anything
# shows exactly what a backend behind the proxy sees, fingerprints included.
# Ctrl-C stops both.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh"
build="${HUGINN_BUILD_DIR:-$here/build}"
demo="$build/demo"

if [[ ! -s "$demo/localhost.crt" || ! -s "$demo/localhost.key" ]]; then
  echo "demo: generating a self-signed certificate for localhost in $demo"
  (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$demo/localhost.key" -out "$demo/localhost.crt" 2>/dev/null)
fi
sed "s|@DEMO_DIR@|$demo|g" "$here/etc/demo.toml" >"$demo/demo.toml"

"$demo/huginn-echo-backend" --listen 127.0.0.1 --port 9000 &
backend=$!
trap 'kill $backend 2>/dev/null; wait $backend 2>/dev/null' EXIT

echo
echo "huginn-proxy demo (Ctrl-C to stop); try:"
echo "  curl -sk https://localhost:8443/hello              # TLS + HTTP/2: JA4, Akamai and TCP fingerprints"
echo "  curl -sk --http1.1 https://localhost:8443/hello    # TLS + HTTP/1.1"
echo "  curl -s --http2-prior-knowledge http://127.0.0.1:8080/hello   # h2c"
echo "  curl -s http://127.0.0.1:8080/hello                # cleartext HTTP/1.1"
echo
"$build/sbin/huginn-proxy" --config "$demo/demo.toml"
