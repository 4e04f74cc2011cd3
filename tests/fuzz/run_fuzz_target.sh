#!/usr/bin/env bash
# Runs one fuzz target for a bounded time (the ctest entry fuzz.<name>):
#   run_fuzz_target.sh BINARY SOURCE_CORPUS BUILD_DIR [LIBFUZZER_OPTION...]
# (ctest passes -max_total_time=SECONDS, and -dict=... for JSON inputs.)
# libFuzzer first runs every input of the source corpus (seeds and kept
# regression inputs), then mutates. New inputs go to BUILD_DIR/corpus/<name>,
# never into the source tree. Exits non-zero on any crash, leak, timeout or
# sanitizer report; the input is then in BUILD_DIR/findings/<name>/.
set -euo pipefail
binary="$1" source_corpus="$2" build="$3"
shift 3
name="$(basename "$binary")"
name="${name%_fuzz}"
work="$build/corpus/$name"
findings="$build/findings/$name"
mkdir -p "$work" "$findings"
exec "$binary" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" "$@" \
  "$work" "$source_corpus"
