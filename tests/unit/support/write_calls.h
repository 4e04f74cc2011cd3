// The write(2)-family system calls this process has made so far, for tests
// that count them (/proc/self/io, field syscw; every thread of the process).
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace commitd::testing {

inline int64_t WriteCalls() {
  std::ifstream io("/proc/self/io");
  std::string key;
  int64_t value = 0;
  while (io >> key >> value) {
    if (key == "syscw:") return value;
  }
  FAIL("no syscw in /proc/self/io");
  return 0;
}

}  // namespace commitd::testing
