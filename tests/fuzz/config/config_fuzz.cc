// The TOML configuration: config::LoadFromString (toml++ without exceptions, then the schema's
// typed fields) with the proxy's schema (MakeProxySchema) or the pusher's (AddToSchema), then
// the checks each service runs on a loaded configuration (BuildSipProxyOptions without the
// file-reading keys, ValidateConfig).
// Input: byte 0 picks the schema (even: proxy, odd: pusher), the rest is the TOML text.
// Oracle: the documented promise of config::Dump, "loading it back changes nothing".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/config.h"
#include "common/log.h"
#include "proxy/config.h"
#include "pusher/core/config.h"

namespace {

using pushgate::config::Schema;

// OPEN (toml++ 3.x bug, not fixed yet): its whitespace test reaches TOML_UNREACHABLE for code
// points U+00A1..U+0499 and U+2C5E..U+3057 met outside strings (e.g. "[http\xCE\xA2"); refusing
// them everywhere would refuse "é" in comments, so the fix needs a lexer. Until then these inputs
// are skipped here. (U+FB26..U+FEFE: refused by config::LoadFromString.)
bool HasOpenTomlppBug(absl::string_view text) {
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    const auto b1 = static_cast<unsigned char>(text[i + 1]);
    if (b0 >= 0xC2 && b0 <= 0xD2 && (b1 & 0xC0) == 0x80) return true;  // U+0080..U+04BF
    if (b0 == 0xE2 || b0 == 0xE3) return true;                         // U+2000..U+3FFF
  }
  return false;
}

template <typename Config, typename MakeSchema>
void LoadDumpReload(absl::string_view toml, MakeSchema make_schema) {
  Config config;
  const Schema schema = make_schema(&config);
  if (!pushgate::config::LoadFromString(schema, toml, "fuzz.toml", pushgate::config::NoEnv())
           .ok()) {
    return;
  }
  const std::string dumped = pushgate::config::Dump(schema);
  Config again;
  const Schema schema_again = make_schema(&again);
  if (!pushgate::config::LoadFromString(schema_again, dumped, "dump.toml",
                                        pushgate::config::NoEnv())
           .ok() ||
      pushgate::config::Dump(schema_again) != dumped) {
    std::abort();  // the dump of a loaded configuration does not load back to the same
  }
  if constexpr (std::is_same_v<Config, pushgate::proxy::ProxyConfig>) {
    config.tls_certificate_dir.clear();  // no files from fuzzed paths
    config.masquerade_secret_file.clear();
    pushgate::proxy::SecretSource source;
    (void)pushgate::proxy::BuildSipProxyOptions(config, &source);
  } else {
    (void)pushgate::pusher::ValidateConfig(config);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const absl::string_view toml(reinterpret_cast<const char*>(data + 1), size - 1);
  if (HasOpenTomlppBug(toml)) return 0;
  if (data[0] % 2 == 0) {
    LoadDumpReload<pushgate::proxy::ProxyConfig>(
        toml, [](pushgate::proxy::ProxyConfig* c) { return pushgate::proxy::MakeProxySchema(c); });
  } else {
    LoadDumpReload<pushgate::pusher::PusherConfig>(toml, [](pushgate::pusher::PusherConfig* c) {
      Schema s("pushgate-pusher");
      pushgate::pusher::AddToSchema(s, c);
      return s;
    });
  }
  return 0;
}
