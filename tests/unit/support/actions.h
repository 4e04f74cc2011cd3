// Picking one kind of action out of an engine's output, for engine tests.
#pragma once

#include <variant>
#include <vector>

namespace commitd::testing {

// The actions of type T, in order.
template <class T, class... Kinds>
std::vector<T> Only(const std::vector<std::variant<Kinds...>>& actions) {
  std::vector<T> out;
  for (const auto& a : actions) {
    if (auto* p = std::get_if<T>(&a)) out.push_back(*p);
  }
  return out;
}

}  // namespace commitd::testing
