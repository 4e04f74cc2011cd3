// Typed reads of numeric flags with the bench's usage-error messages.
#pragma once

#include <cstdint>
#include <string>

#include "common/flags.h"
#include "common/status.h"

namespace commitd::bench {

// The flag's value as an integer >= min, or fallback when absent.
inline Result<int64_t> IntFlag(const Flags& flags, const std::string& name, int64_t fallback, int64_t min) {
  auto text = flags.Get(name);
  if (!text) return fallback;
  try {
    std::size_t used = 0;
    long long v = std::stoll(*text, &used);
    if (used != text->size() || v < min) throw std::invalid_argument(name);
    return static_cast<int64_t>(v);
  } catch (const std::exception&) {
    return Status::InvalidArgument("--" + name + ": expected an integer >= " + std::to_string(min) + ", got '" +
                                   *text + "'");
  }
}

// The flag's value as a number >= min, or fallback when absent.
inline Result<double> DoubleFlag(const Flags& flags, const std::string& name, double fallback, double min) {
  auto text = flags.Get(name);
  if (!text) return fallback;
  try {
    std::size_t used = 0;
    double v = std::stod(*text, &used);
    if (used != text->size() || v < min) throw std::invalid_argument(name);
    return v;
  } catch (const std::exception&) {
    return Status::InvalidArgument("--" + name + ": expected a number >= " + std::to_string(min) + ", got '" +
                                   *text + "'");
  }
}

}  // namespace commitd::bench
