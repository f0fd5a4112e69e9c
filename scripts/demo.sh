#!/usr/bin/env bash
# Installs the dependencies, builds, and runs huginn-proxy in the foreground
# on the demo configuration (etc/demo.toml):
#   http://127.0.0.1:8080/  →  demo echo backend on 127.0.0.1:9000
# The backend answers with a JSON echo of the request it received, so
#   curl http://127.0.0.1:8080/anything
# shows exactly what a backend behind the proxy sees. Ctrl-C stops both.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh"
build="${HUGINN_BUILD_DIR:-$here/build}"

"$build/demo/huginn-echo-backend" --listen 127.0.0.1 --port 9000 &
backend=$!
trap 'kill $backend 2>/dev/null; wait $backend 2>/dev/null' EXIT

echo
echo "huginn-proxy demo: try  curl -s http://127.0.0.1:8080/hello  (Ctrl-C to stop)"
echo
"$build/sbin/huginn-proxy" --config "$here/etc/demo.toml"
