// Sizes glibc's per-thread cache of freed chunks for a server's allocation
// pattern, before anything else runs.
//
// glibc keeps at most 7 freed chunks of each small size per thread; the rest
// go to the arena's fastbins, and every larger allocation (a request body, a
// batched reply) first consolidates them. A JSON request allocates and frees
// dozens of small nodes, so with the default an agent spent about a quarter of
// its io thread in malloc's bookkeeping (docs/benchmarking.md). The cache size
// is only settable through GLIBC_TUNABLES, which glibc reads at process start:
// so the process re-executes itself once with it set.
//
// Nothing happens if the environment already names glibc.malloc.tcache_count
// (the operator chose), if COMMITD_MALLOC_TUNING=off, or if the re-exec fails
// (the process then runs on with glibc's defaults).
//
// Thread: call first thing in main(), before any thread or file is opened.
#pragma once

namespace commitd {

void TuneMallocOrReexec(char** argv);

}  // namespace commitd
