#!/usr/bin/env bash
# Installs the dependencies, builds everything (tests included), runs every
# libFuzzer target briefly on its corpus, the sanitized subset
# (scripts/asan.sh), then the whole CTest suite; the last line is CTest's
# summary. HUGINN_SKIP_FUZZ=1 / HUGINN_SKIP_ASAN=1 skip the first two.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/install-deps.sh"
build="${HUGINN_BUILD_DIR:-$here/build}"
"$here/scripts/build.sh" -DHUGINN_BUILD_TESTS=ON

# Short libFuzzer runs (clang, ASan+UBSan) as a regression check; the long
# campaigns are run by hand (docs/FUZZING.md).
if [ "${HUGINN_SKIP_FUZZ:-0}" != 1 ]; then
  "$here/scripts/fuzz.sh" "${HUGINN_FUZZ_SECONDS:-15}"
fi

# The sanitized suite (ASan + UBSan, gcc; its own build tree): unit tests,
# fuzz-corpus replays and the integration subset (docs/ROBUSTNESS.md).
if [ "${HUGINN_SKIP_ASAN:-0}" != 1 ]; then
  "$here/scripts/asan.sh"
fi

cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 300
