#include "common/malloc_tuning.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace commitd {
namespace {

constexpr const char* kTcacheCount = "glibc.malloc.tcache_count=2048";
constexpr const char* kDoneMarker = "COMMITD_MALLOC_TUNING";

}  // namespace

void TuneMallocOrReexec(char** argv) {
  const char* marker = std::getenv(kDoneMarker);
  if (marker != nullptr) return;  // "off", or "applied" by our own re-exec
  const char* current = std::getenv("GLIBC_TUNABLES");
  std::string tunables = current != nullptr ? current : "";
  if (tunables.find("glibc.malloc.tcache_count") != std::string::npos) return;
  tunables = tunables.empty() ? kTcacheCount : tunables + ":" + kTcacheCount;
  if (setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0 || setenv(kDoneMarker, "applied", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Still here: the exec failed. Run on untuned, and leave the environment as it was.
  if (current != nullptr) {
    setenv("GLIBC_TUNABLES", current, 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
  unsetenv(kDoneMarker);
}

}  // namespace commitd
