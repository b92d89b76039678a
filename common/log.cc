#include "common/log.h"

#include <map>
#include <mutex>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace pushgate::log {
namespace {

// The %* flag: the message, escaped for a JSON string.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped = JsonEscape(absl::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

struct State {
  std::mutex mu;
  LogConfig config;
  spdlog::level::level_enum default_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum, std::less<>> component_levels;
  spdlog::sink_ptr sink;
};

State& GetState() {
  static State* state = [] {
    auto* s = new State;
    s->sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    return s;
  }();
  return *state;
}

std::unique_ptr<spdlog::formatter> MakeFormatter(const std::string& format) {
  if (format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","msg":"%*"})");
    return f;
  }
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%fZ %-5l [%n] %v",
                                                     spdlog::pattern_time_type::utc);
}

absl::StatusOr<spdlog::level::level_enum> ParseLevel(absl::string_view name) {
  auto level = spdlog::level::from_str(std::string(name));
  // from_str answers "off" for anything it does not know; only accept "off" when asked for.
  if (level == spdlog::level::off && name != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown log level '", name, "' (trace, debug, info, warn, error, critical, off)"));
  }
  return level;
}

spdlog::level::level_enum LevelFor(const State& state, absl::string_view component) {
  // The longest configured prefix wins: "pusher" covers "pusher.http2" unless it has its own.
  spdlog::level::level_enum level = state.default_level;
  size_t best = 0;
  for (const auto& [name, lvl] : state.component_levels) {
    if ((component == name ||
         (component.size() > name.size() && absl::StartsWith(component, name) &&
          component[name.size()] == '.')) &&
        name.size() > best) {
      best = name.size();
      level = lvl;
    }
  }
  return level;
}

}  // namespace

absl::Status Init(const LogConfig& config) {
  if (config.format != "text" && config.format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown log format '", config.format, "' (text or json)"));
  }
  auto default_level = ParseLevel(config.level);
  if (!default_level.ok()) return default_level.status();
  std::map<std::string, spdlog::level::level_enum, std::less<>> levels;
  for (absl::string_view item : absl::StrSplit(config.components, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, '=');
    absl::string_view name = absl::StripAsciiWhitespace(kv.first);
    absl::string_view lvl = absl::StripAsciiWhitespace(kv.second);
    if (name.empty() || lvl.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad component level '", item, "' (expected component=level)"));
    }
    auto parsed = ParseLevel(lvl);
    if (!parsed.ok()) return parsed.status();
    levels[std::string(name)] = *parsed;
  }
  State& state = GetState();
  std::lock_guard lock(state.mu);
  state.config = config;
  state.default_level = *default_level;
  state.component_levels = std::move(levels);
  state.sink->set_formatter(MakeFormatter(config.format));
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& logger) {
    logger->set_level(LevelFor(state, logger->name()));
  });
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> Get(absl::string_view component) {
  std::string name(component);
  if (auto existing = spdlog::get(name)) return existing;
  State& state = GetState();
  std::lock_guard lock(state.mu);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, state.sink);
  logger->set_level(LevelFor(state, name));
  logger->flush_on(spdlog::level::warn);
  spdlog::register_logger(logger);
  return logger;
}

std::string RedactToken(absl::string_view token) {
  if (token.size() <= 8) return absl::StrCat("<redacted:", token.size(), ">");
  return absl::StrCat(token.substr(0, 6), "…(", token.size(), ")");
}

std::string RedactUri(absl::string_view uri) {
  // Parameter names whose values are device tokens.
  static constexpr absl::string_view kTokenParams[] = {"pn-prid=", "pn-tok="};
  // Where a URI parameter value ends (RFC 3261 uri-parameter; '>' and ',' end a Contact).
  auto value_end = [&](size_t from) {
    size_t end = uri.find_first_of(";?>, \t\r\n\"", from);
    return end == absl::string_view::npos ? uri.size() : end;
  };
  std::string out;
  out.reserve(uri.size());
  size_t i = 0;
  while (i < uri.size()) {
    bool redacted = false;
    if (uri[i] == ';') {
      for (absl::string_view name : kTokenParams) {
        absl::string_view rest = uri.substr(i + 1);
        if (rest.size() >= name.size() &&
            absl::EqualsIgnoreCase(rest.substr(0, name.size()), name)) {
          const size_t start = i + 1 + name.size();
          const size_t end = value_end(start);
          absl::StrAppend(&out, uri.substr(i, 1 + name.size()),
                          RedactToken(uri.substr(start, end - start)));
          i = end;
          redacted = true;
          break;
        }
      }
    }
    if (!redacted) out.push_back(uri[i++]);
  }
  return out;
}

std::string RedactSecret(absl::string_view secret) {
  return absl::StrCat("<redacted:", secret.size(), ">");
}

std::string JsonEscape(absl::string_view in) {
  std::string out;
  out.reserve(in.size() + 8);
  for (unsigned char c : in) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

}  // namespace pushgate::log
