#include "participant/procedures.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/json_parse.h"

namespace commitd::participant {

namespace {

using nlohmann::json;

bool IsBlank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

Result<Procedure> ParseProcedure(const std::string& name, const json& value) {
  const std::string where = "procedures." + name;
  if (!value.is_object()) return Status::InvalidArgument(where + ": must be an object");
  Procedure proc;
  proc.name = name;
  for (const auto& [key, field] : value.items()) {
    if (key == "sql") {
      if (field.is_string()) {
        if (IsBlank(field.get<std::string>())) return Status::InvalidArgument(where + ".sql: must not be empty");
        proc.statements.push_back(field.get<std::string>());
      } else if (field.is_array()) {
        if (field.empty()) return Status::InvalidArgument(where + ".sql: must not be empty");
        for (std::size_t i = 0; i < field.size(); ++i) {
          const std::string item_where = where + ".sql[" + std::to_string(i) + "]";
          if (!field[i].is_string()) return Status::InvalidArgument(item_where + ": must be a string");
          if (IsBlank(field[i].get<std::string>())) return Status::InvalidArgument(item_where + ": must not be empty");
          proc.statements.push_back(field[i].get<std::string>());
        }
      } else {
        return Status::InvalidArgument(where + ".sql: must be a string or an array of strings");
      }
    } else if (key == "expect_changes") {
      bool fits = field.is_number_integer() &&
                  (field.is_number_unsigned() ? field.get<uint64_t>() <= uint64_t{std::numeric_limits<int64_t>::max()}
                                              : field.get<int64_t>() >= 0);
      if (!fits) return Status::InvalidArgument(where + ".expect_changes: must be a non-negative integer");
      proc.expect_changes = field.get<int64_t>();
    } else {
      return Status::InvalidArgument(where + "." + key + ": unknown key (expected 'sql' or 'expect_changes')");
    }
  }
  if (proc.statements.empty()) return Status::InvalidArgument(where + ".sql: required");
  return proc;
}

}  // namespace

Result<Procedures> Procedures::Parse(const std::string& json_text) {
  Result<json> parsed = ParseJsonExplained(json_text);
  if (!parsed.ok()) return Status::InvalidArgument("invalid procedures JSON: " + parsed.status().message());
  const json& root = *parsed;
  if (!root.is_object()) return Status::InvalidArgument("procedures file: must be a JSON object");
  for (const auto& [key, unused] : root.items()) {
    if (key != "procedures") return Status::InvalidArgument(key + ": unknown key (expected 'procedures')");
  }
  auto it = root.find("procedures");
  if (it == root.end()) return Status::InvalidArgument("procedures: required");
  if (!it->is_object()) return Status::InvalidArgument("procedures: must be an object");

  Procedures result;
  for (const auto& [name, value] : it->items()) {
    if (name.empty()) return Status::InvalidArgument("procedures: a procedure name must not be empty");
    Result<Procedure> proc = ParseProcedure(name, value);
    if (!proc.ok()) return proc.status();
    result.by_name_.emplace(name, std::move(proc).value());
  }
  return result;
}

Result<Procedures> Procedures::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read procedures file " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read procedures file " + path + ": " + std::strerror(errno));
  Result<Procedures> parsed = Parse(text.str());
  if (!parsed.ok()) return Status(parsed.status().code(), "procedures file " + path + ": " + parsed.status().message());
  return parsed;
}

Status Procedures::Add(std::string name, ProcedureFn fn) {
  if (name.empty()) return Status::InvalidArgument("a procedure name must not be empty");
  if (!fn) return Status::InvalidArgument("procedure '" + name + "': the callable is empty");
  if (by_name_.count(name) != 0) return Status::InvalidArgument("procedure '" + name + "' is defined twice");
  Procedure proc;
  proc.name = name;
  proc.callable = std::move(fn);
  by_name_.emplace(std::move(name), std::move(proc));
  return Status::Ok();
}

const Procedure* Procedures::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

std::vector<std::string> Procedures::Names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, unused] : by_name_) names.push_back(name);
  return names;
}

}  // namespace commitd::participant
