// The procedure catalog of an agent: named SQL from the procedures file
// (docs/participant.md) and C++ callables registered by an embedding service.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "participant/procedure_context.h"

namespace commitd::participant {

struct Procedure {
  std::string name;
  std::vector<std::string> statements;  // run in order; empty for a callable
  std::optional<int64_t> expect_changes;  // each writing statement must change exactly this many rows
  ProcedureFn callable;                   // set instead of statements for a C++ procedure
};

class Procedures {
 public:
  // {"procedures": {"debit": {"sql": "..." | ["...", ...], "expect_changes": 1}, ...}}
  static Result<Procedures> Parse(const std::string& json_text);
  static Result<Procedures> Load(const std::string& path);

  // Adds a C++ procedure. InvalidArgument if the name is empty or taken, or fn is empty.
  Status Add(std::string name, ProcedureFn fn);

  const Procedure* Find(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, Procedure> by_name_;
};

}  // namespace commitd::participant
