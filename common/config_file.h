// The --config FILE of commitd and commit-agent: one JSON object holding any
// of common/config.h's keys and any of the program's command-line flags, named
// with '_' for '-':
//   {"id": "c1", "listen": "127.0.0.1:7000", "data_dir": "/var/lib/commitd",
//    "participant": ["bank-a=http://127.0.0.1:7101"], "join": false,
//    "log_level": "info", "retry_max_ms": 1000}
// A flag's value is a string (a number is taken as its decimal text), a list
// of strings for a repeatable flag, true/false for a switch. Flags given on
// the command line win over the file. Unknown keys are an error.
#pragma once

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/flags.h"
#include "common/status.h"

namespace commitd {

struct ConfigFile {
  Config config;
  Flags flags;  // the flags the file sets, by their command-line names
};

// valued and switches: the program's flags, as given to Flags::Parse.
// "config", "help" and "version" cannot be set in a file.
Result<ConfigFile> ParseConfigFile(const nlohmann::json& value, const std::set<std::string>& valued,
                                   const std::set<std::string>& switches);

// When flags has --config FILE: reads FILE, adds the flags it sets that the
// command line does not, and returns its Config. Otherwise the defaults.
Result<Config> ApplyConfigFile(Flags* flags, const std::set<std::string>& valued,
                               const std::set<std::string>& switches);

}  // namespace commitd
