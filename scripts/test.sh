#!/usr/bin/env bash
# Builds (installing missing packages first) and runs the whole test suite
# with ctest: unit tests, simulator tests and the real-process integration
# tests. Exits non-zero if anything fails or if no test ran.
#
# Environment:
#   COMMITD_SOAK=1        longer, more thorough runs (tests read it; each test
#                         still stays inside its ctest timeout)
#   COMMITD_TEST_JOBS=N   ctest parallelism (default 2)
#   COMMITD_TEST_REGEX=R  run only tests whose name matches R (ctest -R)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/build.sh"

# Integration tests pick random free loopback ports and private temp dirs, so
# they can run side by side; two at a time matches this machine's two cores.
jobs="${COMMITD_TEST_JOBS:-2}"
export COMMITD_SOAK="${COMMITD_SOAK:-0}"

args=(--test-dir build/release --output-on-failure --no-tests=error
      --timeout 300 -j "$jobs")
if [[ -n "${COMMITD_TEST_REGEX:-}" ]]; then
  args+=(-R "$COMMITD_TEST_REGEX")
fi

# Every test has its own ctest TIMEOUT; this outer bound catches anything
# that hangs ctest itself (CI allows 90 minutes in all).
timeout --kill-after=30 3600 ctest "${args[@]}"
