# The allocator of the server binaries (commitd, commit-agent): the target
# commitd_allocator, linked into each of them.
#
# jemalloc by default: paired runs put glibc's malloc at 15-20 % more CPU per
# transfer (docs/benchmarking.md, What the storage and batching choices are
# worth). Every JSON message allocates and frees dozens of small nodes; on
# glibc a fifth of commitd's samples were in _int_malloc, _int_free and
# malloc_consolidate. Linked as a shared library ahead of libc, jemalloc's
# malloc and free are the whole process's. The libraries (commitd_participant
# for a service that embeds an agent) leave the choice to the program that
# links them.
#
# COMMITD_ALLOCATOR=system keeps glibc's malloc. Sanitizer builds always do:
# AddressSanitizer must own malloc to check it.
set(COMMITD_ALLOCATOR "jemalloc" CACHE STRING "Allocator of commitd and commit-agent: jemalloc or system")
set_property(CACHE COMMITD_ALLOCATOR PROPERTY STRINGS jemalloc system)
if(COMMITD_SANITIZE)
  set(COMMITD_ALLOCATOR "system")
endif()

add_library(commitd_allocator INTERFACE)
if(COMMITD_ALLOCATOR STREQUAL "jemalloc")
  find_library(COMMITD_JEMALLOC_LIBRARY NAMES jemalloc)
  if(NOT COMMITD_JEMALLOC_LIBRARY)
    message(FATAL_ERROR "COMMITD_ALLOCATOR=jemalloc: libjemalloc not found (Debian: apt-get install libjemalloc-dev, "
                        "which scripts/deps.sh does), or configure with -DCOMMITD_ALLOCATOR=system")
  endif()
  target_link_libraries(commitd_allocator INTERFACE ${COMMITD_JEMALLOC_LIBRARY})
elseif(NOT COMMITD_ALLOCATOR STREQUAL "system")
  message(FATAL_ERROR "COMMITD_ALLOCATOR must be jemalloc or system, not '${COMMITD_ALLOCATOR}'")
endif()
