// What every fuzz target shares: the input as text, its fields, and a check
// that ends the run as a finding (libFuzzer reports the abort with the input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace commitd::fuzz {

inline std::string_view Text(const uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Targets that need several values read them as fields separated by the
// ASCII unit separator (0x1f), so that seed files stay readable; missing
// fields are empty.
constexpr char kFieldSeparator = '\x1f';

inline std::vector<std::string_view> Fields(std::string_view text, std::size_t count) {
  std::vector<std::string_view> fields;
  fields.reserve(count);
  while (fields.size() + 1 < count) {
    std::size_t end = text.find(kFieldSeparator);
    if (end == std::string_view::npos) break;
    fields.push_back(text.substr(0, end));
    text.remove_prefix(end + 1);
  }
  fields.push_back(text);
  fields.resize(count);
  // Never a null data pointer: SQLite binds that as NULL, not as ''.
  for (std::string_view& field : fields) {
    if (field.empty()) field = std::string_view("");
  }
  return fields;
}

// A property every input must keep; a broken one is a finding.
inline void Require(bool holds, const char* what) {
  if (holds) return;
  std::fprintf(stderr, "fuzz property broken: %s\n", what);
  std::abort();
}

}  // namespace commitd::fuzz
