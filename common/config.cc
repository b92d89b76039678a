#include "common/config.h"

#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1
#include <toml++/toml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/log.h"
#include "common/status.h"

namespace pushgate::config {

struct TomlValue {
  const toml::node& node;
};

namespace {

// toml++ 3.x (Debian 12) reaches TOML_UNREACHABLE (undefined behaviour) when its whitespace test
// meets a code point U+FB26..U+FEFE (its lookup falls through; found by fuzz_config), so text
// holding one is refused before parsing. Returns the first such code point, or 0.
char32_t TomlppUnsafeCodePoint(absl::string_view text) {
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    const auto b1 = static_cast<unsigned char>(text[i + 1]);
    const auto b2 = static_cast<unsigned char>(text[i + 2]);
    if (b0 != 0xEF || (b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80) continue;
    const char32_t c = 0xF000 | ((b1 & 0x3Fu) << 6) | (b2 & 0x3Fu);
    if (c >= 0xFB26 && c <= 0xFEFE) return c;
  }
  return 0;
}

absl::string_view SV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Quote(absl::string_view s) { return absl::StrCat("\"", log::JsonEscape(s), "\""); }

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

std::string NodeTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    default:
      return "date/time";
  }
}

absl::Status WrongType(absl::string_view type_name, const toml::node& node) {
  return Invalid(absl::StrCat("expected ", type_name, ", got ", NodeTypeName(node)));
}

template <typename T>
absl::Status CheckRange(T value, T min, T max) {
  if (value < min || value > max) {
    return Invalid(absl::StrCat("value ", value, " is out of range [", min, ", ", max, "]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParseDurationChecked(absl::string_view text, absl::Duration min,
                                                    absl::Duration max) {
  absl::Duration d;
  if (!absl::ParseDuration(std::string(absl::StripAsciiWhitespace(text)), &d)) {
    return Invalid(
        absl::StrCat("'", text, "' is not a duration (examples: \"90s\", \"250ms\", \"1h\")"));
  }
  if (d < min || d > max) {
    return Invalid(absl::StrCat("duration ", absl::FormatDuration(d), " is out of range [",
                                absl::FormatDuration(min), ", ", absl::FormatDuration(max), "]"));
  }
  return d;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (t == "true" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "no") return false;
  return Invalid(absl::StrCat("'", text, "' is not a boolean (true or false)"));
}

absl::Status CheckAllowed(const std::string& value, const std::vector<std::string>& allowed) {
  if (allowed.empty()) return absl::OkStatus();
  for (const auto& a : allowed) {
    if (a == value) return absl::OkStatus();
  }
  return Invalid(absl::StrCat("'", value, "' is not one of: ", absl::StrJoin(allowed, ", ")));
}

template <typename IntT>
void AddIntField(Schema::Field& f, IntT* target, IntT min, IntT max) {
  f.set_from_toml = [type = f.type_name, target, min, max](const TomlValue& v) -> absl::Status {
    auto value = v.node.value_exact<int64_t>();
    if (!value) return WrongType(type, v.node);
    RETURN_IF_ERROR(CheckRange<int64_t>(*value, min, max));
    *target = static_cast<IntT>(*value);
    return absl::OkStatus();
  };
  f.set_from_env = [target, min, max](absl::string_view text) -> absl::Status {
    int64_t value;
    if (!absl::SimpleAtoi(text, &value)) {
      return Invalid(absl::StrCat("'", text, "' is not an integer"));
    }
    RETURN_IF_ERROR(CheckRange<int64_t>(value, min, max));
    *target = static_cast<IntT>(value);
    return absl::OkStatus();
  };
  f.to_toml = [target] { return absl::StrCat(*target); };
}

std::string Where(const std::string& source, const toml::source_region& region) {
  return absl::StrCat(source, ":", region.begin.line);
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

EnvLookup NoEnv() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

std::string EnvName(absl::string_view section, absl::string_view key) {
  std::string name = absl::StrCat("PUSHGATE_", section, "_", key);
  for (char& c : name) c = (c == '-' || c == '.') ? '_' : absl::ascii_toupper(c);
  return name;
}

Schema& Schema::Section(std::string name, std::string doc) {
  sections_.emplace_back(std::move(name), std::move(doc));
  return *this;
}

const Schema::Field* Schema::Find(absl::string_view section, absl::string_view key) const {
  for (const auto& f : fields_) {
    if (f.section == section && f.key == key) return &f;
  }
  return nullptr;
}

bool Schema::HasSection(absl::string_view section) const {
  for (const auto& [name, doc] : sections_) {
    if (name == section) return true;
  }
  return false;
}

Schema::Field& Schema::AddField(const std::string& section, const std::string& key, std::string doc,
                                std::string type_name) {
  if (!HasSection(section)) sections_.emplace_back(section, "");
  fields_.push_back(Field{section, key, std::move(doc), std::move(type_name), {}, {}, {}});
  return fields_.back();
}

Schema& Schema::Bool(const std::string& section, const std::string& key, bool* target,
                     std::string doc) {
  Field& f = AddField(section, key, std::move(doc), "boolean");
  f.set_from_toml = [type = f.type_name, target](const TomlValue& v) -> absl::Status {
    auto value = v.node.value_exact<bool>();
    if (!value) return WrongType(type, v.node);
    *target = *value;
    return absl::OkStatus();
  };
  f.set_from_env = [target](absl::string_view text) -> absl::Status {
    ASSIGN_OR_RETURN(*target, ParseBool(text));
    return absl::OkStatus();
  };
  f.to_toml = [target] { return std::string(*target ? "true" : "false"); };
  return *this;
}

Schema& Schema::Int(const std::string& section, const std::string& key, int64_t* target,
                    int64_t min, int64_t max, std::string doc) {
  AddIntField<int64_t>(AddField(section, key, std::move(doc), "integer"), target, min, max);
  return *this;
}

Schema& Schema::Int(const std::string& section, const std::string& key, int* target, int min,
                    int max, std::string doc) {
  AddIntField<int>(AddField(section, key, std::move(doc), "integer"), target, min, max);
  return *this;
}

Schema& Schema::Double(const std::string& section, const std::string& key, double* target,
                       double min, double max, std::string doc) {
  Field& f = AddField(section, key, std::move(doc), "number");
  f.set_from_toml = [type = f.type_name, target, min, max](const TomlValue& v) -> absl::Status {
    auto value = v.node.value<double>();  // integers convert losslessly
    if (!value || !(v.node.is_floating_point() || v.node.is_integer())) {
      return WrongType(type, v.node);
    }
    RETURN_IF_ERROR(CheckRange(*value, min, max));
    *target = *value;
    return absl::OkStatus();
  };
  f.set_from_env = [target, min, max](absl::string_view text) -> absl::Status {
    double value;
    if (!absl::SimpleAtod(text, &value))
      return Invalid(absl::StrCat("'", text, "' is not a number"));
    RETURN_IF_ERROR(CheckRange(value, min, max));
    *target = value;
    return absl::OkStatus();
  };
  f.to_toml = [target] {
    std::ostringstream out;
    out << *target;
    std::string s = out.str();
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
  };
  return *this;
}

Schema& Schema::String(const std::string& section, const std::string& key, std::string* target,
                       std::string doc, std::vector<std::string> allowed) {
  if (!allowed.empty()) absl::StrAppend(&doc, " One of: ", absl::StrJoin(allowed, ", "), ".");
  Field& f = AddField(section, key, std::move(doc), "string");
  f.set_from_toml = [type = f.type_name, target, allowed](const TomlValue& v) -> absl::Status {
    auto value = v.node.value_exact<std::string>();
    if (!value) return WrongType(type, v.node);
    RETURN_IF_ERROR(CheckAllowed(*value, allowed));
    *target = std::move(*value);
    return absl::OkStatus();
  };
  f.set_from_env = [target, allowed = std::move(allowed)](absl::string_view text) -> absl::Status {
    RETURN_IF_ERROR(CheckAllowed(std::string(text), allowed));
    *target = std::string(text);
    return absl::OkStatus();
  };
  f.to_toml = [target] { return Quote(*target); };
  return *this;
}

Schema& Schema::Duration(const std::string& section, const std::string& key, absl::Duration* target,
                         absl::Duration min, absl::Duration max, std::string doc) {
  Field& f = AddField(section, key, std::move(doc), "duration string");
  f.set_from_toml = [type = f.type_name, target, min, max](const TomlValue& v) -> absl::Status {
    auto value = v.node.value_exact<std::string>();
    if (!value) return WrongType(type, v.node);
    ASSIGN_OR_RETURN(*target, ParseDurationChecked(*value, min, max));
    return absl::OkStatus();
  };
  f.set_from_env = [target, min, max](absl::string_view text) -> absl::Status {
    ASSIGN_OR_RETURN(*target, ParseDurationChecked(text, min, max));
    return absl::OkStatus();
  };
  f.to_toml = [target] { return Quote(absl::FormatDuration(*target)); };
  return *this;
}

Schema& Schema::StringList(const std::string& section, const std::string& key,
                           std::vector<std::string>* target, std::string doc) {
  Field& f = AddField(section, key, std::move(doc), "array of strings");
  f.set_from_toml = [type = f.type_name, target](const TomlValue& v) -> absl::Status {
    const toml::array* array = v.node.as_array();
    if (array == nullptr) return WrongType(type, v.node);
    std::vector<std::string> values;
    for (const toml::node& item : *array) {
      auto s = item.value_exact<std::string>();
      if (!s)
        return Invalid(absl::StrCat("expected array of strings, found a ", NodeTypeName(item)));
      values.push_back(std::move(*s));
    }
    *target = std::move(values);
    return absl::OkStatus();
  };
  f.set_from_env = [target](absl::string_view text) -> absl::Status {
    std::vector<std::string> values;
    for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
      values.emplace_back(absl::StripAsciiWhitespace(item));
    }
    *target = std::move(values);
    return absl::OkStatus();
  };
  f.to_toml = [target] {
    std::vector<std::string> quoted;
    for (const auto& s : *target) quoted.push_back(Quote(s));
    return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
  };
  return *this;
}

absl::Status LoadFromString(const Schema& schema, absl::string_view toml_text,
                            const std::string& source_name, const EnvLookup& env) {
  if (const char32_t c = TomlppUnsafeCodePoint(toml_text); c != 0) {
    return Invalid(absl::StrCat(
        source_name, ": unsupported character U+",
        absl::AsciiStrToUpper(absl::StrCat(absl::Hex(static_cast<uint32_t>(c), absl::kZeroPad4)))));
  }
  toml::parse_result parsed =
      toml::parse(std::string_view(toml_text.data(), toml_text.size()), source_name);
  if (!parsed) {
    const toml::parse_error& err = parsed.error();
    return Invalid(absl::StrCat(source_name, ":", err.source().begin.line,
                                ": TOML syntax error: ", SV(err.description())));
  }
  const toml::table& root = parsed.table();
  for (const auto& [section_key, section_node] : root) {
    std::string section(section_key.str());
    if (!schema.HasSection(section)) {
      return Invalid(absl::StrCat(Where(source_name, section_key.source()), ": unknown section '",
                                  section, "'"));
    }
    const toml::table* table = section_node.as_table();
    if (table == nullptr) {
      return Invalid(absl::StrCat(Where(source_name, section_key.source()), ": '", section,
                                  "' must be a table ([", section, "])"));
    }
    for (const auto& [key, value] : *table) {
      const Schema::Field* field = schema.Find(section, SV(key.str()));
      if (field == nullptr) {
        return Invalid(absl::StrCat(Where(source_name, key.source()), ": unknown key '", section,
                                    ".", SV(key.str()), "'"));
      }
      absl::Status s = field->set_from_toml(TomlValue{value});
      if (!s.ok()) {
        return Invalid(absl::StrCat(Where(source_name, value.source()), ": key '", section, ".",
                                    SV(key.str()), "': ", s.message()));
      }
    }
  }
  for (const Schema::Field& field : schema.fields()) {
    std::string name = EnvName(field.section, field.key);
    std::optional<std::string> value = env(name);
    if (!value) continue;
    absl::Status s = field.set_from_env(*value);
    if (!s.ok()) {
      return Invalid(absl::StrCat("environment ", name, ": key '", field.section, ".", field.key,
                                  "': ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Load(const Schema& schema, const std::string& path, const EnvLookup& env) {
  std::string text;
  if (!path.empty()) {
    absl::StatusOr<std::string> content = ReadFile(path);
    if (!content.ok()) return Invalid(absl::StrCat(path, ": cannot open config file"));
    text = *std::move(content);
  }
  return LoadFromString(schema, text, path.empty() ? "<defaults>" : path, env);
}

std::string Dump(const Schema& schema) {
  std::string out = absl::StrCat("# ", schema.service(),
                                 " configuration. Every key is listed with its default value.\n"
                                 "# Any key can be overridden by the environment variable "
                                 "PUSHGATE_<SECTION>_<KEY>.\n");
  for (const auto& [section, section_doc] : schema.sections()) {
    absl::StrAppend(&out, "\n");
    if (!section_doc.empty()) absl::StrAppend(&out, "# ", section_doc, "\n");
    absl::StrAppend(&out, "[", section, "]\n");
    for (const Schema::Field& f : schema.fields()) {
      if (f.section != section) continue;
      for (absl::string_view line : absl::StrSplit(f.doc, '\n')) {
        absl::StrAppend(&out, "# ", line, "\n");
      }
      absl::StrAppend(&out, "# (", f.type_name, "; env ", EnvName(f.section, f.key), ")\n");
      absl::StrAppend(&out, f.key, " = ", f.to_toml(), "\n");
    }
  }
  return out;
}

}  // namespace pushgate::config
