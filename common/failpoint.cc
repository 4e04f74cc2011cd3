#include "common/failpoint.h"

#include <csignal>
#include <cstdlib>
#include <mutex>
#include <set>

#include "common/log.h"

namespace commitd::failpoint {
namespace {

std::mutex g_mu;
std::set<std::string, std::less<>> g_active;

}  // namespace

void InitFromEnvironment() {
  const char* env = std::getenv("COMMITD_FAILPOINTS");
  if (env == nullptr) return;
  std::string all(env);
  std::size_t start = 0;
  while (start <= all.size()) {
    std::size_t comma = all.find(',', start);
    if (comma == std::string::npos) comma = all.size();
    if (comma > start) Enable(all.substr(start, comma - start));
    start = comma + 1;
  }
}

void Enable(std::string name) {
  log::Warn("failpoint_enabled", {{"name", name}});
  std::lock_guard<std::mutex> lock(g_mu);
  g_active.insert(std::move(name));
}

void Disable(std::string_view name) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto it = g_active.find(name); it != g_active.end()) g_active.erase(it);
}

bool Active(std::string_view name) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_active.find(name) != g_active.end();
}

void CrashIf(std::string_view name) {
  if (!Active(name)) return;
  log::Error("failpoint_crash", {{"name", name}});
  std::raise(SIGKILL);
}

}  // namespace commitd::failpoint
