// The version of this build: the project version from CMakeLists.txt and the
// git commit it was built from ("unknown" outside a git checkout).
#pragma once

namespace commitd {

extern const char* const kVersion;    // e.g. "0.1.0"
extern const char* const kGitCommit;  // e.g. "bc6b65a1f2c3", or "unknown"

}  // namespace commitd
