// Command-line flags: "--name value", "--name=value", repeatable, and
// boolean switches. Unknown flags and missing values are usage errors.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace commitd {

class Flags {
 public:
  // valued: flags that take a value; switches: flags that do not.
  static Result<Flags> Parse(int argc, char** argv, const std::set<std::string>& valued,
                             const std::set<std::string>& switches);

  std::optional<std::string> Get(const std::string& name) const;
  std::vector<std::string> GetAll(const std::string& name) const;
  bool Has(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

}  // namespace commitd
