// The procedures file of an agent (A.4): named SQL with named parameters.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace commitd::participant {

struct Procedure {
  std::string name;
  std::vector<std::string> statements;  // run in order
  std::optional<int64_t> expect_changes;  // each writing statement must change exactly this many rows
};

class Procedures {
 public:
  // {"procedures": {"debit": {"sql": "..." | ["...", ...], "expect_changes": 1}, ...}}
  static Result<Procedures> Parse(const std::string& json_text);
  static Result<Procedures> Load(const std::string& path);

  const Procedure* Find(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, Procedure> by_name_;
};

}  // namespace commitd::participant
