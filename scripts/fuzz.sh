#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan + UBSan into build-fuzz/ and
# runs each one for SECONDS (default 15) on a copy of its corpus.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-15}"; shift || true
build="${HUGINN_FUZZ_BUILD_DIR:-$here/build-fuzz}"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DHUGINN_FUZZ=ON -DHUGINN_BUILD_TESTS=OFF \
  -DHUGINN_SANITIZE=address,undefined >/dev/null
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for f in "$here"/tests/fuzz/*_fuzz.cpp; do
    n="$(basename "$f" _fuzz.cpp)"; targets+=("$n")
  done
fi
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
for t in "${targets[@]}"; do
  work="$(mktemp -d)"
  mkdir -p "$work/corpus"
  cp -r "$here/tests/fuzz/corpus/$t/." "$work/corpus/" 2>/dev/null || true
  echo "fuzz: $t for ${secs}s"
  if ! (cd "$work" && "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$work/" "$work/corpus" > "$work/log" 2>&1); then
    tail -n 60 "$work/log"
    echo "fuzz: $t FAILED (artifacts in $work)"
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|cov:' "$work/log" | tail -n 2 | sed "s/^/fuzz: $t: /"
  rm -rf "$work"
done
