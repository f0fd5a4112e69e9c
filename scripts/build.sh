#!/usr/bin/env bash
# Configures and builds huginn-proxy into ./build (or $HUGINN_BUILD_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HUGINN_BUILD_DIR:-$here/build}"
jobs="$(nproc)"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE="${HUGINN_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build" -j "$jobs"
