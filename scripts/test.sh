#!/usr/bin/env bash
# Builds (installing missing packages first) and runs the whole test suite
# with ctest: unit tests, simulator tests, the real-process integration tests,
# and the fuzz targets (scripts/fuzz.sh builds them with clang into
# build/fuzz). Exits non-zero if anything fails or if no test ran.
#
# Environment:
#   COMMITD_SOAK=1        longer, more thorough runs (tests read it; each test
#                         still stays inside its ctest timeout); fuzz targets
#                         run 300 s each instead of 20 s
#   COMMITD_FUZZ_SECONDS=N  seconds per fuzz target
#   COMMITD_TEST_JOBS=N   ctest parallelism (default 2)
#   COMMITD_TEST_REGEX=R  run only tests whose name matches R (ctest -R)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/build.sh"
"$ROOT/scripts/fuzz.sh" --build-only

# Integration tests pick random free loopback ports and private temp dirs, so
# they can run side by side; two at a time matches this machine's two cores.
jobs="${COMMITD_TEST_JOBS:-2}"
export COMMITD_SOAK="${COMMITD_SOAK:-0}"

# Two ctest trees: build/release (g++: unit, sim, integration) and build/fuzz
# (clang: the fuzz targets, fuzz.<name>, run after the rest so that they do
# not slow the timed integration tests).
filter=()
if [[ -n "${COMMITD_TEST_REGEX:-}" ]]; then
  filter=(-R "$COMMITD_TEST_REGEX")
fi
ran=0
failed=0
for dir in build/release build/fuzz; do
  count="$(ctest --test-dir "$dir" -N "${filter[@]}" | sed -n 's/^Total Tests: //p')"
  if [[ "${count:-0}" -eq 0 ]]; then
    continue
  fi
  ran=1
  # Every test has its own ctest TIMEOUT; this outer bound catches anything
  # that hangs ctest itself (CI allows 90 minutes in all).
  timeout --kill-after=30 3600 ctest --test-dir "$dir" --output-on-failure --timeout 300 -j "$jobs" "${filter[@]}" ||
    failed=1
done
if [[ "$ran" -eq 0 ]]; then
  echo "test.sh: no test matches '${COMMITD_TEST_REGEX:-}'" >&2
  exit 1
fi
exit "$failed"
