#!/usr/bin/env bash
# Installs missing build dependencies, then configures and builds the release
# preset: build dir build/release, executables in build/release/bin.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/deps.sh"

jobs="$(nproc 2>/dev/null || echo 2)"
cmake --preset release
cmake --build --preset release --parallel "$jobs"
