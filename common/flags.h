// Command-line flags: "--name value", "--name=value", repeatable, and
// boolean switches; "-h" is "--help" where "help" is a switch. Unknown flags
// (also any other "-x") and missing values are usage errors.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
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
  // Appends one value of flag name (a switch's value is "true").
  void Add(const std::string& name, std::string value);
  // Takes every flag of other that this does not have: the command line
  // parsed into this wins over other (e.g. a --config file).
  void AddMissing(const Flags& other);
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// The items of a comma-separated flag value, in order, empty ones included
// ("a,,b" has three items, "" one).
std::vector<std::string> CommaItems(std::string_view list);
// The same without the empty items.
std::vector<std::string> SplitCommas(std::string_view list);

}  // namespace commitd
