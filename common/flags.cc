#include "common/flags.h"

#include <algorithm>

namespace commitd {

Result<Flags> Flags::Parse(int argc, char** argv, const std::set<std::string>& valued,
                           const std::set<std::string>& switches) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" && switches.count("help") != 0) arg = "--help";
    if (arg.size() > 1 && arg[0] == '-' && arg[1] != '-') return Status::InvalidArgument("unknown flag " + arg);
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      flags.positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (switches.count(name) != 0) {
      if (value) return Status::InvalidArgument("--" + name + " takes no value");
      flags.values_[name].push_back("true");
      continue;
    }
    if (valued.count(name) == 0) return Status::InvalidArgument("unknown flag --" + name);
    if (!value) {
      if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
      value = argv[++i];
    }
    flags.values_[name].push_back(*value);
  }
  return flags;
}

std::optional<std::string> Flags::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Flags::GetAll(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

bool Flags::Has(const std::string& name) const { return values_.count(name) != 0; }

void Flags::Add(const std::string& name, std::string value) { values_[name].push_back(std::move(value)); }

void Flags::AddMissing(const Flags& other) {
  for (const auto& [name, values] : other.values_) {
    if (values_.count(name) == 0) values_[name] = values;
  }
}

std::vector<std::string> CommaItems(std::string_view list) {
  std::vector<std::string> items;
  for (std::size_t start = 0; start <= list.size();) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    items.emplace_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

std::vector<std::string> SplitCommas(std::string_view list) {
  std::vector<std::string> items = CommaItems(list);
  std::erase(items, "");
  return items;
}

}  // namespace commitd
