#!/usr/bin/env bash
# Builds the fuzz targets (tests/fuzz: libFuzzer with AddressSanitizer and
# UndefinedBehaviorSanitizer, compiled by clang) into build/fuzz, then runs
# each for a bounded time with ctest (entries fuzz.<name>). Exits non-zero on
# any crash, leak or sanitizer report; the input is left in
# build/fuzz/findings/<name>/.
#
#   scripts/fuzz.sh               build, then run every target
#   scripts/fuzz.sh --build-only  build only
#
# Environment:
#   COMMITD_FUZZ_SECONDS=N  seconds per target (default 20, or 300 with COMMITD_SOAK=1)
#   COMMITD_TEST_JOBS=N     targets run at once (default 2)
#   COMMITD_TEST_REGEX=R    only targets whose ctest name matches R
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${COMMITD_SOAK:-0}" == 1 ]]; then
  seconds="${COMMITD_FUZZ_SECONDS:-300}"
else
  seconds="${COMMITD_FUZZ_SECONDS:-20}"
fi

"$ROOT/scripts/deps.sh"
cmake -S tests/fuzz -B build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DCOMMITD_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build build/fuzz --parallel "$(nproc 2>/dev/null || echo 2)"
if [[ "${1:-}" == "--build-only" ]]; then
  exit 0
fi

args=(--test-dir build/fuzz --output-on-failure --no-tests=error -j "${COMMITD_TEST_JOBS:-2}")
if [[ -n "${COMMITD_TEST_REGEX:-}" ]]; then
  args+=(-R "$COMMITD_TEST_REGEX")
fi
ctest "${args[@]}"
