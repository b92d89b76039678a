#include "pusher/core/config.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "pusher/core/apns_token.h"

namespace pushgate::pusher {
namespace {

std::string Def(const std::string& s) { return absl::StrCat(" Default: \"", s, "\"."); }
std::string Def(bool b) { return absl::StrCat(" Default: ", b ? "true" : "false", "."); }
std::string Def(int64_t v) { return absl::StrCat(" Default: ", v, "."); }
std::string Def(double v) { return absl::StrCat(" Default: ", v, "."); }
std::string Def(absl::Duration d) {
  return absl::StrCat(" Default: \"", absl::FormatDuration(d), "\".");
}
std::string Def(const std::vector<std::string>& v) {
  return absl::StrCat(" Default: [", absl::StrJoin(v, ", "), "].");
}

bool IsBundleId(absl::string_view id) {
  if (id.empty()) return false;
  for (absl::string_view label : absl::StrSplit(id, '.')) {
    if (label.empty()) return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-') return false;
    }
  }
  return true;
}

// "https://host[:port]" (no path unless `allow_path`).
absl::Status CheckUrl(absl::string_view key, absl::string_view url, bool allow_path) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "https://") && !absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": '", url, "' must start with https:// (or http://)"));
  }
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  if (authority.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": '", url, "' has no host"));
  }
  if (!allow_path && slash != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": '", url, "' must be scheme://host[:port] without a path"));
  }
  return absl::OkStatus();
}

// [grpc]: the gRPC API.
void AddGrpcSection(config::Schema& schema, PusherConfig* c, const PusherConfig& d) {
  schema.Section("grpc", "The gRPC API (pushgate.v1.Pusher, health, reflection).")
      .String("grpc", "listen", &c->grpc.listen,
              "Address:port to serve gRPC on ([v6]:port for IPv6). Plaintext without TLS is "
              "allowed on loopback only, unless allow_insecure is set." +
                  Def(d.grpc.listen))
      .String("grpc", "tls_cert_file", &c->grpc.tls_cert_file,
              "Server certificate chain (PEM). TLS is on when set, with tls_key_file." +
                  Def(d.grpc.tls_cert_file))
      .String("grpc", "tls_key_file", &c->grpc.tls_key_file,
              "Private key (PEM) of tls_cert_file." + Def(d.grpc.tls_key_file))
      .String("grpc", "client_ca_file", &c->grpc.client_ca_file,
              "CA bundle (PEM) for mutual TLS: clients must present a certificate it signed. "
              "Needs TLS." +
                  Def(d.grpc.client_ca_file))
      .Bool("grpc", "allow_insecure", &c->grpc.allow_insecure,
            "Allow plaintext gRPC on a non-loopback address (anyone reaching the port can wake "
            "every phone: only behind another protection). Loopback plaintext is always allowed." +
                Def(d.grpc.allow_insecure))
      .String("grpc", "api_keys_file", &c->grpc.api_keys_file,
              "File of API keys, one client per line: \"client-name api-key app1,app2\" or "
              "\"client-name api-key *\" (apps: bundle ids / FCM project ids). Clients send the "
              "key as gRPC metadata 'x-api-key'; with mutual TLS a client certificate named "
              "client-name gets that client's apps. Empty: no API keys required." +
                  Def(d.grpc.api_keys_file))
      .Duration("grpc", "deadline_default", &c->grpc.deadline_default, absl::Milliseconds(100),
                absl::Minutes(10),
                "Deadline of a push whose client set none." + Def(d.grpc.deadline_default))
      .Int("grpc", "stream_backlog", &c->grpc.stream_backlog, 2, 1000000,
           "Per SendStream: pushes in flight plus results the client has not read yet, above "
           "which the stream is no longer read (a client that stops reading its results is "
           "held back by HTTP/2 flow control instead of growing the pusher's memory)." +
               Def(int64_t{d.grpc.stream_backlog}));
}

// [apns] and [fcm]: the providers and their credentials.
void AddProviderSections(config::Schema& schema, PusherConfig* c, const PusherConfig& d) {
  schema.Section("apns", "Apple Push Notification service.")
      .StringList("apns", "token_keys", &c->apns.token_keys,
                  "Token-auth keys, one per team: \"TEAMID:KEYID:/path/AuthKey_KEYID.p8\"." +
                      Def(d.apns.token_keys))
      .StringList("apns", "certificates", &c->apns.certificates,
                  "Certificate-auth credentials: \"<bundle-id>:/path/cert.pem:/path/key.pem\" "
                  "(or \"<bundle-id>:/path/both.pem\")." +
                      Def(d.apns.certificates))
      .String("apns", "production_url", &c->apns.production_url,
              "APNs production endpoint (scheme://host[:port])." + Def(d.apns.production_url))
      .String("apns", "sandbox_url", &c->apns.sandbox_url,
              "APNs development endpoint, for APNS_SANDBOX." + Def(d.apns.sandbox_url))
      .Duration("apns", "token_refresh_age", &c->apns.token_refresh_age,
                ApnsTokenSigner::kMinRefreshAge, ApnsTokenSigner::kMaxRefreshAge,
                "Age at which a provider token is re-signed (Apple: 20 to 60 minutes)." +
                    Def(d.apns.token_refresh_age));
  schema.Section("fcm", "Firebase Cloud Messaging, HTTP v1.")
      .StringList(
          "fcm", "service_accounts", &c->fcm.service_accounts,
          "Service-account JSON files, one per Firebase project." + Def(d.fcm.service_accounts))
      .String("fcm", "base_url", &c->fcm.base_url,
              "FCM endpoint (scheme://host[:port])." + Def(d.fcm.base_url))
      .String("fcm", "token_uri_override", &c->fcm.token_uri_override,
              "OAuth2 token endpoint for every account; empty: each file's token_uri." +
                  Def(d.fcm.token_uri_override));
}

// [http2]: the connections to the providers.
void AddHttp2Section(config::Schema& schema, PusherConfig* c, const PusherConfig& d) {
  schema.Section("http2", "HTTP/2 connections to the providers.")
      .String("http2", "ca_file", &c->http2.ca_file,
              "CA bundle (PEM) to verify providers; empty: the system trust store." +
                  Def(d.http2.ca_file))
      .Bool("http2", "verify_peer", &c->http2.verify_peer,
            "Verify the provider's certificate and host name." + Def(d.http2.verify_peer))
      .Int("http2", "max_connections_per_pool", &c->http2.max_connections_per_pool, 1, 64,
           "Connections per (provider, credential, environment) pool." +
               Def(int64_t{d.http2.max_connections_per_pool}))
      .Int("http2", "min_connections_per_pool", &c->http2.min_connections_per_pool, 0, 64,
           "Connections per pool opened at start and kept open even when idle (reopened with "
           "backoff): the first push does not wait for DNS, TCP and TLS, and an unreachable "
           "provider or a refused certificate shows in the log at once. At most "
           "max_connections_per_pool." +
               Def(int64_t{d.http2.min_connections_per_pool}))
      .Int("http2", "max_queue_per_pool", &c->http2.max_queue_per_pool, 1, 10'000'000,
           "Requests waiting for a stream per pool; beyond it sends fail with "
           "RESOURCE_EXHAUSTED." +
               Def(int64_t{d.http2.max_queue_per_pool}))
      .Duration("http2", "connect_timeout", &c->http2.connect_timeout, absl::Milliseconds(100),
                absl::Minutes(5), "TCP + TLS + SETTINGS time limit." + Def(d.http2.connect_timeout))
      .Duration("http2", "ping_interval", &c->http2.ping_interval, absl::Seconds(1), absl::Hours(1),
                "PING an idle connection this often." + Def(d.http2.ping_interval))
      .Duration("http2", "request_timeout", &c->http2.request_timeout, absl::Milliseconds(100),
                absl::Minutes(10),
                "Longest wait for one provider answer (the push deadline may be shorter)." +
                    Def(d.http2.request_timeout));
}

// [retry] and [idempotency].
void AddRetrySections(config::Schema& schema, PusherConfig* c, const PusherConfig& d) {
  schema.Section("retry", "Retries of 429/5xx answers: exponential backoff with jitter.")
      .Duration("retry", "initial_backoff", &c->retry.initial_backoff, absl::Milliseconds(1),
                absl::Minutes(1), "Delay before the first retry." + Def(d.retry.initial_backoff))
      .Duration("retry", "max_backoff", &c->retry.max_backoff, absl::Milliseconds(1),
                absl::Minutes(10),
                "Cap on the backoff (Retry-After may ask for more)." + Def(d.retry.max_backoff))
      .Int("retry", "max_attempts", &c->retry.max_attempts, 1, 20,
           "Attempts per push, the first included." + Def(int64_t{d.retry.max_attempts}))
      .Double("retry", "multiplier", &c->retry.multiplier, 1.0, 10.0,
              "Backoff growth per attempt." + Def(d.retry.multiplier))
      .Double("retry", "jitter", &c->retry.jitter, 0.0, 1.0,
              "Random spread of each delay (0.2 = +-20%)." + Def(d.retry.jitter));
  schema.Section("idempotency", "Request ids answered from memory instead of pushing twice.")
      .Duration("idempotency", "window", &c->idempotency.window, absl::Seconds(1), absl::Hours(24),
                "How long a result is remembered after it was sent." + Def(d.idempotency.window))
      .Int("idempotency", "max_entries", &c->idempotency.max_entries, 1, 10'000'000,
           "Request ids remembered at most (oldest evicted)." + Def(d.idempotency.max_entries));
}

// [admin] and [log].
void AddAdminAndLogSections(config::Schema& schema, PusherConfig* c, const PusherConfig& d) {
  schema.Section("admin", "Admin HTTP: /metrics, /healthz, /readyz.")
      .String("admin", "listen", &c->admin.listen,
              "Address:port of the admin server; empty: none." + Def(d.admin.listen));
  schema.Section("log", "Logging.")
      .String("log", "format", &c->log.format, "\"text\" or \"json\" lines." + Def(d.log.format),
              {"text", "json"})
      .String("log", "level", &c->log.level, "Default level." + Def(d.log.level),
              {"trace", "debug", "info", "warn", "error", "critical", "off"})
      .String("log", "components", &c->log.components,
              "Per-component levels: \"pusher.http2=debug,pusher.apns=trace\"." +
                  Def(d.log.components));
}

}  // namespace

void AddToSchema(config::Schema& schema, PusherConfig* c) {
  const PusherConfig d;
  AddGrpcSection(schema, c, d);
  AddProviderSections(schema, c, d);
  AddHttp2Section(schema, c, d);
  AddRetrySections(schema, c, d);
  AddAdminAndLogSections(schema, c, d);
}

absl::Status ParseHostPort(absl::string_view address, std::string* host, int* port) {
  absl::string_view h;
  absl::string_view p;
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("'", address, "' is not [ipv6]:port"));
    }
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", address, "' is not host:port"));
    }
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
    if (absl::StrContains(h, ':')) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", address, "': write IPv6 addresses as [addr]:port"));
    }
  }
  int value = -1;
  if (h.empty() || p.empty() || !absl::SimpleAtoi(p, &value) || value < 0 || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address, "' needs a host and a port in 0..65535"));
  }
  *host = std::string(h);
  *port = value;
  return absl::OkStatus();
}

bool IsLoopbackHost(absl::string_view host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::StatusOr<TokenKeySpec> ParseTokenKeySpec(absl::string_view entry) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("apns.token_keys entry '", entry, "': ", why,
                     " (expected \"TEAMID:KEYID:/path/AuthKey.p8\")"));
  };
  std::vector<std::string> parts = absl::StrSplit(entry, absl::MaxSplits(':', 2));
  if (parts.size() != 3) return bad("needs three ':'-separated fields");
  TokenKeySpec spec{parts[0], parts[1], parts[2]};
  if (!IsAppleId(spec.team_id)) return bad("team id must be 10 characters A-Z/0-9");
  if (!IsAppleId(spec.key_id)) return bad("key id must be 10 characters A-Z/0-9");
  if (spec.key_file.empty()) return bad("key file path is empty");
  return spec;
}

absl::StatusOr<CertificateSpec> ParseCertificateSpec(absl::string_view entry) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("apns.certificates entry '", entry, "': ", why,
                     " (expected \"<bundle-id>:/path/cert.pem:/path/key.pem\")"));
  };
  std::vector<std::string> parts = absl::StrSplit(entry, ':');
  if (parts.size() != 2 && parts.size() != 3) return bad("needs 2 or 3 ':'-separated fields");
  CertificateSpec spec;
  spec.bundle_id = parts[0];
  spec.cert_file = parts[1];
  spec.key_file = parts.size() == 3 ? parts[2] : parts[1];
  if (!IsBundleId(spec.bundle_id)) {
    return bad("bundle id must be dot-separated labels of letters, digits and '-'");
  }
  if (spec.cert_file.empty()) return bad("certificate path is empty");
  if (spec.key_file.empty()) return bad("key path is empty");
  return spec;
}

bool ApiKeyEntry::Allows(absl::string_view app) const {
  if (all_apps) return true;
  for (const std::string& a : apps) {
    if (a == app) return true;
  }
  return false;
}

absl::StatusOr<std::vector<ApiKeyEntry>> ParseApiKeysFile(absl::string_view text) {
  std::vector<ApiKeyEntry> out;
  absl::flat_hash_set<std::string> clients;
  absl::flat_hash_set<std::string> keys;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    size_t hash = line.find('#');
    if (hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", why));
    };
    if (fields.size() != 3) {
      return bad(absl::StrCat("expected \"client-name api-key app1,app2|*\", found ", fields.size(),
                              " fields"));
    }
    ApiKeyEntry entry;
    entry.client = std::string(fields[0]);
    entry.key = std::string(fields[1]);
    if (entry.key.size() < kMinApiKeyLength) {
      return bad(absl::StrCat("API key of client '", entry.client, "' is ", entry.key.size(),
                              " characters, at least ", kMinApiKeyLength));
    }
    if (!clients.insert(entry.client).second) {
      return bad(absl::StrCat("client '", entry.client, "' appears twice"));
    }
    if (!keys.insert(entry.key).second) {
      return bad(
          absl::StrCat("API key of client '", entry.client, "' is already used by another client"));
    }
    if (fields[2] == "*") {
      entry.all_apps = true;
    } else {
      for (absl::string_view app : absl::StrSplit(fields[2], ',')) {
        if (app.empty() || app == "*") {
          return bad(absl::StrCat("app list of client '", entry.client,
                                  "' has an empty entry or a '*' mixed with apps"));
        }
        entry.apps.emplace_back(app);
      }
    }
    out.push_back(std::move(entry));
  }
  return out;
}

absl::Status ValidateConfig(const PusherConfig& c) {
  std::string host;
  int port = 0;
  if (absl::Status s = ParseHostPort(c.grpc.listen, &host, &port); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("grpc.listen: ", s.message()));
  }
  const bool has_cert = !c.grpc.tls_cert_file.empty();
  const bool has_key = !c.grpc.tls_key_file.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(
        "grpc.tls_cert_file and grpc.tls_key_file must be set together");
  }
  if (!c.grpc.client_ca_file.empty() && !has_cert) {
    return absl::InvalidArgumentError(
        "grpc.client_ca_file (mutual TLS) needs grpc.tls_cert_file and grpc.tls_key_file");
  }
  if (!has_cert && !IsLoopbackHost(host) && !c.grpc.allow_insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grpc.listen '", c.grpc.listen,
        "' is not a loopback address: configure grpc.tls_cert_file/grpc.tls_key_file, or set "
        "grpc.allow_insecure = true to serve plaintext"));
  }
  if (c.http2.min_connections_per_pool > c.http2.max_connections_per_pool) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http2.min_connections_per_pool (", c.http2.min_connections_per_pool,
        ") is more than http2.max_connections_per_pool (", c.http2.max_connections_per_pool, ")"));
  }
  if (!c.admin.listen.empty()) {
    if (absl::Status s = ParseHostPort(c.admin.listen, &host, &port); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("admin.listen: ", s.message()));
    }
  }

  absl::flat_hash_set<std::string> teams;
  for (const std::string& entry : c.apns.token_keys) {
    absl::StatusOr<TokenKeySpec> spec = ParseTokenKeySpec(entry);
    if (!spec.ok()) return spec.status();
    if (!teams.insert(spec->team_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("apns.token_keys entry '", entry, "': team ", spec->team_id,
                       " already has a key (one token key per team)"));
    }
  }
  absl::flat_hash_set<std::string> bundles;
  for (const std::string& entry : c.apns.certificates) {
    absl::StatusOr<CertificateSpec> spec = ParseCertificateSpec(entry);
    if (!spec.ok()) return spec.status();
    if (!bundles.insert(spec->bundle_id).second) {
      return absl::InvalidArgumentError(absl::StrCat("apns.certificates entry '", entry,
                                                     "': bundle id ", spec->bundle_id,
                                                     " already has a certificate"));
    }
  }
  for (const std::string& path : c.fcm.service_accounts) {
    if (path.empty()) return absl::InvalidArgumentError("fcm.service_accounts has an empty path");
  }
  if (absl::Status s = CheckUrl("apns.production_url", c.apns.production_url, false); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckUrl("apns.sandbox_url", c.apns.sandbox_url, false); !s.ok()) return s;
  if (absl::Status s = CheckUrl("fcm.base_url", c.fcm.base_url, false); !s.ok()) return s;
  if (!c.fcm.token_uri_override.empty()) {
    if (absl::Status s = CheckUrl("fcm.token_uri_override", c.fcm.token_uri_override, true);
        !s.ok()) {
      return s;
    }
  }
  if (c.retry.initial_backoff > c.retry.max_backoff) {
    return absl::InvalidArgumentError(absl::StrCat(
        "retry.initial_backoff (", absl::FormatDuration(c.retry.initial_backoff),
        ") exceeds retry.max_backoff (", absl::FormatDuration(c.retry.max_backoff), ")"));
  }
  return absl::OkStatus();
}

}  // namespace pushgate::pusher
