// JSON-lines logging to stderr: one object per line, safe from any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace commitd::log {

enum class Level { kDebug, kInfo, kWarn, kError, kOff };  // kOff: as a minimum, nothing is written

// Set once at process start (before other threads run).
void SetComponent(std::string component);  // e.g. "commitd/c1", "agent/bank-a"
void SetMinLevel(Level level);
// "debug", "info", "warn" or "error" (the --log-level values).
std::optional<Level> ParseLevel(std::string_view name);
// Whether a line at `level` is written: lets a caller skip building its fields.
bool Enabled(Level level);

// Writes {"ts":"...","level":"info","component":"...","event":event, ...fields}.
void Write(Level level, std::string_view event, const nlohmann::json& fields = nlohmann::json::object());

inline void Debug(std::string_view e, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kDebug, e, f); }
inline void Info(std::string_view e, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kInfo, e, f); }
inline void Warn(std::string_view e, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kWarn, e, f); }
inline void Error(std::string_view e, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kError, e, f); }

}  // namespace commitd::log
