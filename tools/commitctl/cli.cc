#include "tools/commitctl/cli.h"

#include <chrono>
#include <cstdio>

namespace commitd::commitctl {

Endpoint Context::Coordinator() const {
  return {"coordinator", coordinator_url, "is commitd running? check --coordinator or COMMITD_ENDPOINTS"};
}

Endpoint Context::Agent(const Participant& p) const {
  return {"participant " + p.name, p.url, "is its commit-agent running? check --participant " + p.name + "=URL"};
}

std::string FormatAge(int64_t ms) {
  char buf[32];
  if (ms < 0) ms = 0;
  if (ms < 1'000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1e3);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms / 1'000 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60));
  }
  return buf;
}

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void PrintError(const std::string& message) { std::fprintf(stderr, "commitctl: %s\n", message.c_str()); }

void PrintWaiting(double seconds, const std::string& what) {
  std::fprintf(stderr, "commitctl: waiting up to %g s for %s\n", seconds, what.c_str());
}

// Strings from outside (an error page's excerpt) may not be UTF-8: replaced, never thrown on.
void PrintJson(const nlohmann::json& value) {
  std::printf("%s\n", value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

int64_t IntOr(const nlohmann::json& j, const char* key, int64_t fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

nlohmann::json ArrayOf(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nlohmann::json::array();
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : nlohmann::json::array();
}

bool IsTrue(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string Str(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

}  // namespace commitd::commitctl
