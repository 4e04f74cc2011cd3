// What every commitd binary does the same way on its command line:
// --version, -h/--help, one-line usage errors, and the exit codes.
#pragma once

#include <optional>
#include <set>
#include <string>

#include "common/flags.h"

namespace commitd {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the program ran and failed (or found trouble)
constexpr int kExitUsage = 2;    // bad command line or configuration; nothing was done

class Program {
 public:
  // name: as the user types it ("commitd"); usage: the --help text.
  Program(std::string name, std::string usage) : name_(std::move(name)), usage_(std::move(usage)) {}

  // Parses argv with --help, -h and --version added to switches. Returns the
  // exit code when the program is done (help or version printed on stdout,
  // or a usage error printed as one line on stderr); otherwise fills *flags.
  std::optional<int> Parse(int argc, char** argv, const std::set<std::string>& valued,
                           std::set<std::string> switches, Flags* flags) const;

  // "NAME 0.1.0 (commit bc6b65a1f2c3)".
  std::string VersionLine() const;

  // Prints "NAME: MESSAGE" and a hint to --help on stderr; returns kExitUsage.
  int UsageError(const std::string& message) const;
  // Prints "NAME: MESSAGE" on stderr; returns kExitFailure.
  int Failure(const std::string& message) const;

  const std::string& name() const { return name_; }
  const std::string& usage() const { return usage_; }

 private:
  std::string name_;
  std::string usage_;
};

// --log-level debug|info|warn|error, when flags has it: sets the log's level.
Status SetLogLevel(const Flags& flags);

}  // namespace commitd
