// Named failpoints for crash tests, compiled into every build and inert unless
// named in the COMMITD_FAILPOINTS environment variable (comma-separated) or by
// a --failpoint flag. Each process documents its own names in docs/testing.md.
#pragma once

#include <string>
#include <string_view>

namespace commitd::failpoint {

// Adds names from COMMITD_FAILPOINTS; call once at start-up.
void InitFromEnvironment();
void Enable(std::string name);
void Disable(std::string_view name);
bool Active(std::string_view name);
// If name is active: logs it and kills this process with SIGKILL, as kill -9 would.
void CrashIf(std::string_view name);

}  // namespace commitd::failpoint
