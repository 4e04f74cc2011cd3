#include "common/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "common/json_text.h"

namespace commitd::log {
namespace {

std::string g_component = "commitd";
Level g_min_level = Level::kInfo;
std::mutex g_mu;

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
    case Level::kOff: break;
  }
  return "info";
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void SetComponent(std::string component) { g_component = std::move(component); }
void SetMinLevel(Level level) { g_min_level = level; }

std::optional<Level> ParseLevel(std::string_view name) {
  for (Level level : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (name == LevelName(level)) return level;
  }
  return std::nullopt;
}

bool Enabled(Level level) { return level >= g_min_level && level != Level::kOff; }

void Write(Level level, std::string_view event, const nlohmann::json& fields) {
  if (level < g_min_level) return;
  nlohmann::json line = {{"ts", Timestamp()}, {"level", LevelName(level)}, {"component", g_component},
                         {"event", event}};
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  std::string text = DumpJson(line);
  text += '\n';
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace commitd::log
