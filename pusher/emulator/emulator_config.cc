#include "pusher/emulator/emulator_config.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "pusher/core/jwt.h"

namespace pushgate::pusher::emulator {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

config::Schema EmulatorSchema(EmulatorConfig* c) {
  config::Schema s("pushgate-emulator");
  s.Section("listen", "Listeners.")
      .String("listen", "h2", &c->h2, "host:port of the HTTP/2 TLS listener (APNs, FCM, OAuth).")
      .String("listen", "control", &c->control,
              "host:port of the HTTP/1.1 JSON control endpoint, or \"off\".")
      .Int("listen", "threads", &c->threads, 1, 64, "Event loop threads sharing the h2 port.")
      .Int("listen", "max_records", &c->max_records, 0, 100000000,
           "Received requests kept for /received (oldest forgotten first).");
  s.Section("tls", "TLS of the HTTP/2 listener.")
      .String("tls", "cert", &c->cert, "Server certificate chain (PEM); empty: self-signed.")
      .String("tls", "key", &c->key, "Server private key (PEM).")
      .String("tls", "write_ca", &c->write_ca,
              "Write the certificate clients must trust to this path.")
      .String("tls", "client_ca", &c->client_ca,
              "CA (PEM) of APNs client certificates; empty disables certificate auth.");
  s.Section("apns", "APNs provider API.")
      .StringList("apns", "keys", &c->keys, "Token-auth keys: \"TEAMID:KEYID:/path/public.pem\".")
      .StringList("apns", "topics", &c->topics,
                  "Bundle ids a team may push to: \"TEAMID:bundle.id\" (a team not listed: any).")
      .StringList("apns", "cert_topics", &c->cert_topics,
                  "Topics of a client certificate subject: \"SUBJECT=topic1,topic2\".")
      .StringList("apns", "dead_tokens", &c->dead_tokens, "Device tokens answered 410.")
      .Bool("apns", "strict_token_updates", &c->strict_token_updates,
            "429 TooManyProviderTokenUpdates for a new provider token < 20 min after the last.");
  s.Section("fcm", "FCM v1 and its OAuth2 token endpoint.")
      .StringList("fcm", "accounts", &c->accounts,
                  "Service accounts: \"client_email:/path/public.pem:project_id\".")
      .StringList("fcm", "audiences", &c->audiences,
                  "Accepted assertion audiences besides https://<authority>/token.")
      .Int("fcm", "token_expires_in_s", &c->token_expires_in_s, 1, 86400,
           "Lifetime of issued access tokens (expires_in).")
      .StringList("fcm", "dead_tokens", &c->fcm_dead_tokens, "Registration tokens answered 404.");
  Faults* f = &c->faults;
  s.Section("faults", "Injected failures at start (the control API changes them later).")
      .Int("faults", "delay_ms", &f->delay_ms, 0, 600000, "Delay before every answer.")
      .Int("faults", "fail_next", &f->fail_next, 0, 1 << 30,
           "The next N requests answer fail_status.")
      .Int("faults", "fail_status", &f->fail_status, 429, 503, "429, 500 or 503.")
      .Int("faults", "retry_after_s", &f->retry_after_s, 0, 86400,
           "Retry-After of injected failures (0: none).")
      .String("faults", "fail_target", &f->fail_target, "Which requests fail.",
              {"send", "apns", "fcm", "oauth", "all"})
      .Int("faults", "goaway_after_streams", &f->goaway_after_streams, 0, 1 << 30,
           "GOAWAY a connection once it began N streams (0: off).")
      .Int("faults", "goaway_limit", &f->goaway_limit, 0, 1 << 30,
           "How many connections get that GOAWAY (0: all).")
      .Int("faults", "drop_after_streams", &f->drop_after_streams, 0, 1 << 30,
           "Close a connection after N processed streams; later ones are lost (0: off).")
      .Int("faults", "drop_limit", &f->drop_limit, 0, 1 << 30,
           "How many connections are dropped (0: all).")
      .Int("faults", "max_concurrent_streams", &f->max_concurrent_streams, 0, 1 << 30,
           "SETTINGS_MAX_CONCURRENT_STREAMS (0: 1000).")
      .Bool("faults", "reject_alpn", &f->reject_alpn, "Fail every TLS handshake's ALPN.");
  s.Section("log", "Logging.")
      .String("log", "level", &c->log_level, "Log level.",
              {"trace", "debug", "info", "warn", "error", "off"});
  return s;
}

absl::StatusOr<std::pair<std::string, int>> ParseHostPort(absl::string_view s) {
  std::string host;
  absl::string_view port_text;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == absl::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("bad address '", s, "' (want [v6]:port)"));
    }
    host = std::string(s.substr(1, close - 1));
    port_text = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad address '", s, "' (want host:port)"));
    }
    host = std::string(s.substr(0, colon));
    port_text = s.substr(colon + 1);
  }
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", s, "'"));
  }
  return std::make_pair(host, port);
}

namespace {

// listen.h2 and listen.control.
absl::Status ListenersFromConfig(const EmulatorConfig& c, EmulatorOptions* o) {
  auto h2 = ParseHostPort(c.h2);
  if (!h2.ok()) return h2.status();
  o->h2_host = h2->first;
  o->h2_port = h2->second;
  if (c.control == "off") {
    o->control_port = -1;
  } else {
    auto control = ParseHostPort(c.control);
    if (!control.ok()) return control.status();
    o->control_host = control->first;
    o->control_port = control->second;
  }
  return absl::OkStatus();
}

// tls.cert, tls.key and tls.client_ca, read from their files.
absl::Status TlsFromConfig(const EmulatorConfig& c, EmulatorOptions* o) {
  if (c.cert.empty() != c.key.empty()) {
    return absl::InvalidArgumentError("tls.cert and tls.key must be given together");
  }
  if (!c.cert.empty()) {
    auto cert = ReadFile(c.cert, "tls.cert");
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(c.key, "tls.key");
    if (!key.ok()) return key.status();
    o->tls_cert_pem = *cert;
    o->tls_key_pem = *key;
  }
  if (!c.client_ca.empty()) {
    auto ca = ReadFile(c.client_ca, "tls.client_ca");
    if (!ca.ok()) return ca.status();
    o->client_ca_pem = *ca;
  }
  return absl::OkStatus();
}

// apns.keys, apns.topics and apns.cert_topics.
absl::Status ApnsFromConfig(const EmulatorConfig& c, EmulatorOptions* o) {
  for (const std::string& spec : c.keys) {
    std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits(':', 2));
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("apns.keys: '", spec, "' is not TEAMID:KEYID:/path/public.pem"));
    }
    auto pem = ReadFile(parts[2], "apns.keys");
    if (!pem.ok()) return pem.status();
    o->apns_keys.push_back({parts[0], parts[1], *pem});
  }
  for (const std::string& spec : c.topics) {
    std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits(':', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("apns.topics: '", spec, "' is not TEAMID:bundle.id"));
    }
    o->apns_topics[parts[0]].push_back(parts[1]);
  }
  for (const std::string& spec : c.cert_topics) {
    size_t eq = spec.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("apns.cert_topics: '", spec, "' is not SUBJECT=topic1,topic2"));
    }
    std::vector<std::string> topics = absl::StrSplit(spec.substr(eq + 1), ',', absl::SkipEmpty());
    o->cert_topics[spec.substr(0, eq)] = topics;
  }
  return absl::OkStatus();
}

// fcm.accounts.
absl::Status FcmFromConfig(const EmulatorConfig& c, EmulatorOptions* o) {
  for (const std::string& spec : c.accounts) {
    // The email has no ':'; the path may (rarely), the project id never does.
    size_t first = spec.find(':');
    size_t last = spec.rfind(':');
    if (first == std::string::npos || last == first || first == 0 || last + 1 == spec.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fcm.accounts: '", spec, "' is not client_email:/path/public.pem:project_id"));
    }
    const std::string path = spec.substr(first + 1, last - first - 1);
    auto pem = ReadFile(path, "fcm.accounts");
    if (!pem.ok()) return pem.status();
    o->fcm_accounts.push_back({spec.substr(0, first), *pem, spec.substr(last + 1)});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EmulatorOptions> OptionsFromConfig(const EmulatorConfig& c) {
  EmulatorOptions o;
  RETURN_IF_ERROR(ListenersFromConfig(c, &o));
  o.threads = c.threads;
  o.max_records = static_cast<size_t>(c.max_records);
  RETURN_IF_ERROR(TlsFromConfig(c, &o));
  RETURN_IF_ERROR(ApnsFromConfig(c, &o));
  RETURN_IF_ERROR(FcmFromConfig(c, &o));
  o.oauth_audiences = c.audiences;
  o.token_expires_in_s = c.token_expires_in_s;
  o.strict_token_updates = c.strict_token_updates;
  o.faults = c.faults;
  if (o.faults.fail_status != 429 && o.faults.fail_status != 500 && o.faults.fail_status != 503) {
    return absl::InvalidArgumentError("faults.fail_status must be 429, 500 or 503");
  }
  return o;
}

absl::StatusOr<std::string> MakeJwtCommand(const std::vector<std::string>& args, int64_t now_unix) {
  if (args.empty() || (args[0] != "apns" && args[0] != "oauth")) {
    return absl::InvalidArgumentError("make-jwt: first argument must be apns or oauth");
  }
  std::map<std::string, std::string> flags;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string name = args[i];
    if (name.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("make-jwt: unexpected '", name, "'"));
    }
    name = name.substr(2);
    std::string value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("make-jwt: --", name, " needs a value"));
    }
    flags[name] = value;
  }
  auto need = [&](const std::string& name) -> absl::StatusOr<std::string> {
    auto it = flags.find(name);
    if (it == flags.end() || it->second.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("make-jwt ", args[0], ": --", name, " is required"));
    }
    return it->second;
  };
  const bool apns = args[0] == "apns";
  auto key_path = need(apns ? "p8" : "key");
  if (!key_path.ok()) return key_path.status();
  auto pem = ReadFile(*key_path, apns ? "--p8" : "--key");
  if (!pem.ok()) return pem.status();
  auto key = LoadPrivateKeyPem(*pem);
  if (!key.ok()) return key.status();
  if (apns) {
    auto team = need("team");
    if (!team.ok()) return team.status();
    auto kid = need("kid");
    if (!kid.ok()) return kid.status();
    return SignJwt(JwtAlg::kEs256, *key, {{"kid", *kid}}, {{"iss", *team}, {"iat", now_unix}});
  }
  auto email = need("email");
  if (!email.ok()) return email.status();
  const std::string aud = flags.count("aud") ? flags["aud"] : "https://oauth2.googleapis.com/token";
  const std::string scope =
      flags.count("scope") ? flags["scope"] : "https://www.googleapis.com/auth/firebase.messaging";
  return SignJwt(JwtAlg::kRs256, *key, nullptr,
                 {{"iss", *email},
                  {"scope", scope},
                  {"aud", aud},
                  {"iat", now_unix},
                  {"exp", now_unix + 3600}});
}

}  // namespace pushgate::pusher::emulator
