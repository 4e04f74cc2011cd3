#!/usr/bin/env bash
# Installs the Debian 12 packages commitd needs to build and test, and only
# those that are missing: when everything is there it does nothing (no
# apt-get update either). Works as root; otherwise uses sudo if it exists.
#
# Extra packages can be added for one run with COMMITD_EXTRA_PACKAGES="a b".
set -euo pipefail

PACKAGES=(
  g++ cmake make
  libboost-dev libboost-system-dev
  libsqlite3-dev sqlite3
  postgresql libpq-dev  # the PostgreSQL participant (--backend postgres) and its tests
  pgbouncer  # test_postgres_pooler.py: the agent refuses to run behind a pooler
  nlohmann-json3-dev doctest-dev
  libssl-dev openssl
  libjemalloc-dev  # the allocator of commitd and commit-agent (cmake/allocator.cmake)
  prometheus  # promtool checks the metrics text
  python3 curl ca-certificates
  python3-yaml        # the build turns docs/openapi.yaml into JSON
  python3-jsonschema  # test_openapi.py validates responses against it
  chromium            # test_dashboard.py drives the dashboard headless
  systemd  # systemd-analyze, for the tests that verify the installed units
  # The fuzz targets (tests/fuzz): clang, and the runtime library that ships
  # libFuzzer and the sanitizers (only recommended by clang, so named here).
  clang libclang-rt-14-dev
  # The benchmark's reference runs (scripts/bench.sh BENCH_ETCD=1): a 3-member
  # etcd cluster loaded through its JSON gateway with wrk.
  etcd-server wrk
  valgrind  # scripts/bench/ab_cpu.py --instructions counts instructions under callgrind
)
if [[ -n "${COMMITD_EXTRA_PACKAGES:-}" ]]; then
  read -r -a extra <<<"${COMMITD_EXTRA_PACKAGES}"
  PACKAGES+=("${extra[@]}")
fi

if ! command -v dpkg >/dev/null 2>&1; then
  echo "deps.sh: dpkg not found; not a Debian system, install these yourself: ${PACKAGES[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "deps.sh: installing missing packages: ${missing[*]}" >&2
if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "deps.sh: not root and sudo is not available; install as root: ${missing[*]}" >&2
  exit 1
fi

"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
