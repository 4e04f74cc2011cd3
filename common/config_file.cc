#include "common/config_file.h"
#include "common/json_parse.h"

#include <fstream>
#include <sstream>

namespace commitd {
namespace {

bool SettableFromFile(const std::string& flag) { return flag != "config" && flag != "help" && flag != "version"; }

Status AddValued(Flags* flags, const std::string& key, const std::string& flag, const nlohmann::json& value) {
  auto add_one = [&](const nlohmann::json& item) -> Status {
    if (item.is_string()) {
      flags->Add(flag, item.get<std::string>());
    } else if (item.is_number_integer()) {
      flags->Add(flag, std::to_string(item.get<int64_t>()));
    } else {
      return Status::InvalidArgument("config." + key + ": must be a string" +
                                     (value.is_array() ? "" : " or a list of strings"));
    }
    return Status::Ok();
  };
  if (!value.is_array()) return add_one(value);
  for (const auto& item : value) {
    if (Status s = add_one(item); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

Result<ConfigFile> ParseConfigFile(const nlohmann::json& value, const std::set<std::string>& valued,
                                   const std::set<std::string>& switches) {
  if (!value.is_object()) return Status::InvalidArgument("config: must be a JSON object");
  ConfigFile file;
  nlohmann::json config_keys = nlohmann::json::object();
  for (auto it = value.begin(); it != value.end(); ++it) {
    const std::string& key = it.key();
    std::string flag = key;
    for (char& c : flag) {
      if (c == '_') c = '-';
    }
    if (!SettableFromFile(flag) || key.find('-') != std::string::npos) {
      if (valued.count(flag) != 0 || switches.count(flag) != 0) {
        return Status::InvalidArgument("config: key '" + key + "' cannot be set in the file" +
                                       (SettableFromFile(flag) ? " (write it with '_' for '-')" : ""));
      }
      config_keys[key] = it.value();
    } else if (switches.count(flag) != 0) {
      if (!it->is_boolean()) return Status::InvalidArgument("config." + key + ": must be true or false");
      if (it->get<bool>()) file.flags.Add(flag, "true");
    } else if (valued.count(flag) != 0) {
      if (Status s = AddValued(&file.flags, key, flag, *it); !s.ok()) return s;
    } else {
      config_keys[key] = it.value();
    }
  }
  auto config = Config::FromJson(config_keys);
  if (!config.ok()) return config.status();
  file.config = config.value();
  return file;
}

Result<Config> ApplyConfigFile(Flags* flags, const std::set<std::string>& valued,
                               const std::set<std::string>& switches) {
  auto path = flags->Get("config");
  if (!path) return Config{};
  std::ifstream in(*path);
  if (!in) return Status::InvalidArgument("cannot read config file " + *path);
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = ParseJson(text.str());
  if (parsed.is_discarded()) return Status::InvalidArgument("config file " + *path + " is not valid JSON");
  auto file = ParseConfigFile(parsed, valued, switches);
  if (!file.ok()) return Status::InvalidArgument(*path + ": " + file.status().message());
  flags->AddMissing(file->flags);
  return file->config;
}

}  // namespace commitd
