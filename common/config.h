// Config loading: one TOML file per service, described by a Schema of typed fields that point
// into the service's config struct. The struct's initial values are the defaults.
//
//   ProxyConfig cfg;
//   config::Schema schema("pushgate-proxy");
//   schema.Section("sip", "SIP listeners.")
//       .Int("sip", "port", &cfg.port, 1, 65535, "UDP/TCP port to listen on.");
//   RETURN_IF_ERROR(config::Load(schema, path, config::ProcessEnv()));
//
// Precedence: defaults < file < environment (PUSHGATE_<SECTION>_<KEY>, upper case).
// Every error names the file, line and key (or the environment variable).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace pushgate::config {

// One value read from a TOML document (wraps toml++'s node; defined in config.cc).
struct TomlValue;

// Looks up an environment variable; tests pass a map instead of the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();
EnvLookup NoEnv();

class Schema {
 public:
  struct Field {
    std::string section;
    std::string key;
    std::string doc;
    std::string type_name;  // for messages: "integer", "string", ...
    // Parses and range-checks a value, then stores it. The error message names the problem
    // only; the loader adds where it came from.
    std::function<absl::Status(const TomlValue&)> set_from_toml;
    std::function<absl::Status(absl::string_view)> set_from_env;
    std::function<std::string()> to_toml;  // the current value as a TOML literal
  };

  explicit Schema(std::string service) : service_(std::move(service)) {}

  Schema& Section(std::string name, std::string doc);
  Schema& Bool(const std::string& section, const std::string& key, bool* target, std::string doc);
  Schema& Int(const std::string& section, const std::string& key, int64_t* target, int64_t min,
              int64_t max, std::string doc);
  Schema& Int(const std::string& section, const std::string& key, int* target, int min, int max,
              std::string doc);
  Schema& Double(const std::string& section, const std::string& key, double* target, double min,
                 double max, std::string doc);
  // `allowed` empty: any string; else one of the listed values.
  Schema& String(const std::string& section, const std::string& key, std::string* target,
                 std::string doc, std::vector<std::string> allowed = {});
  // A TOML string parsed by absl::ParseDuration ("90s", "1m30s", "250ms").
  Schema& Duration(const std::string& section, const std::string& key, absl::Duration* target,
                   absl::Duration min, absl::Duration max, std::string doc);
  // A TOML array of strings; from the environment, a comma-separated list.
  Schema& StringList(const std::string& section, const std::string& key,
                     std::vector<std::string>* target, std::string doc);

  const std::string& service() const { return service_; }
  const std::vector<Field>& fields() const { return fields_; }
  const std::vector<std::pair<std::string, std::string>>& sections() const { return sections_; }
  const Field* Find(absl::string_view section, absl::string_view key) const;
  bool HasSection(absl::string_view section) const;

 private:
  Field& AddField(const std::string& section, const std::string& key, std::string doc,
                  std::string type_name);

  std::string service_;
  std::vector<std::pair<std::string, std::string>> sections_;  // name, doc
  std::vector<Field> fields_;
};

// Loads `path` (skipped when empty) then the environment overrides into the schema's targets.
// Errors (code INVALID_ARGUMENT) read "FILE:LINE: key 'section.key': what is wrong".
absl::Status Load(const Schema& schema, const std::string& path, const EnvLookup& env);

// Same, from TOML text; `source_name` stands for the file name in messages.
absl::Status LoadFromString(const Schema& schema, absl::string_view toml_text,
                            const std::string& source_name, const EnvLookup& env);

// The whole configuration with its current values (the defaults, when called before Load) and
// each key's documentation as comments. Loading it back changes nothing.
std::string Dump(const Schema& schema);

// Name of the environment variable overriding one key: PUSHGATE_<SECTION>_<KEY>.
std::string EnvName(absl::string_view section, absl::string_view key);

// Exit code for a configuration that cannot be used.
inline constexpr int kConfigErrorExitCode = 2;

}  // namespace pushgate::config
