#include "common/program.h"

#include <cstdio>

#include "common/log.h"
#include "common/version.h"

namespace commitd {

std::optional<int> Program::Parse(int argc, char** argv, const std::set<std::string>& valued,
                                  std::set<std::string> switches, Flags* flags) const {
  switches.insert("help");
  switches.insert("version");
  auto parsed = Flags::Parse(argc, argv, valued, switches);
  if (!parsed.ok()) return UsageError(parsed.status().message());
  if (parsed->Has("help")) {
    std::fputs(usage_.c_str(), stdout);
    return kExitOk;
  }
  if (parsed->Has("version")) {
    std::printf("%s\n", VersionLine().c_str());
    return kExitOk;
  }
  *flags = std::move(parsed).value();
  return std::nullopt;
}

std::string Program::VersionLine() const {
  return name_ + " " + kVersion + " (commit " + kGitCommit + ")";
}

int Program::UsageError(const std::string& message) const {
  std::fprintf(stderr, "%s: %s (see %s --help)\n", name_.c_str(), message.c_str(), name_.c_str());
  return kExitUsage;
}

int Program::Failure(const std::string& message) const {
  std::fprintf(stderr, "%s: %s\n", name_.c_str(), message.c_str());
  return kExitFailure;
}

Status SetLogLevel(const Flags& flags) {
  auto name = flags.Get("log-level");
  if (!name) return Status::Ok();
  auto level = log::ParseLevel(*name);
  if (!level) return Status::InvalidArgument("--log-level must be debug, info, warn or error, got '" + *name + "'");
  log::SetMinLevel(*level);
  return Status::Ok();
}

}  // namespace commitd
