// What every commitctl command gets: the global flags, its own flags and
// arguments, a client, and small formatting helpers.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/flags.h"
#include "tools/commitctl/blocking_client.h"

namespace commitd::commitctl {

constexpr int kExitOk = 0;
constexpr int kExitTrouble = 1;  // something in doubt, unhealthy, or failed
constexpr int kExitUsage = 2;

struct Participant {
  std::string name;
  std::string url;
};

struct Context {
  std::string coordinator_url;  // the first of the endpoints that answered (or the first of them)
  std::vector<Participant> participants;  // from --participant NAME=URL
  bool json = false;
  const Flags* flags = nullptr;     // the command's own flags, e.g. --state
  std::vector<std::string> args;    // positional arguments after the command words
  BlockingClient* client = nullptr;

  Endpoint Coordinator() const;
  Endpoint Agent(const Participant& p) const;
};

// "350ms", "12.3s", "4m05s", "2h10m".
std::string FormatAge(int64_t ms);
// Milliseconds since the Unix epoch, as the coordinator's wall clock uses.
int64_t WallNowMs();
// Prints a one-line error to stderr, prefixed with "commitctl: ".
void PrintError(const std::string& message);
// Before a wait of more than a moment: "commitctl: waiting up to 30 s for ..."
// on stderr, so stdout stays the command's result (or its JSON).
void PrintWaiting(double seconds, const std::string& what);
// Prints value.dump(2) to stdout.
void PrintJson(const nlohmann::json& value);
// j[key] as a string, "" when absent; numbers are printed.
std::string Str(const nlohmann::json& j, const char* key);
// j[key] when it is the boolean true; false for anything else (absent, another type).
bool IsTrue(const nlohmann::json& j, const char* key);
// j[key] when it is an integer; fallback for anything else.
int64_t IntOr(const nlohmann::json& j, const char* key, int64_t fallback);
// j[key] when it is an array; an empty array for anything else.
nlohmann::json ArrayOf(const nlohmann::json& j, const char* key);

}  // namespace commitd::commitctl
