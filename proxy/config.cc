#include "proxy/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/status.h"
#include "proxy/core/domain_policy.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/sip_uri.h"

namespace pushgate::proxy {

namespace {

void AddSipSection(config::Schema& s, ProxyConfig* c) {
  s.Section("sip", "SIP side: listeners, the backend registrar, masquerading.")
      .StringList("sip", "listen", &c->listen,
                  "Listeners as transport:address:port; transport is udp, tcp or tls; IPv6 in "
                  "brackets (\"udp:[::]:5060\"); port 0 picks a free port.")
      .StringList("sip", "advertise", &c->advertise,
                  "Public address per transport (behind NAT or in a container), written into "
                  "masqueraded contacts: \"udp:203.0.113.7:5060\". A transport without an entry "
                  "advertises its listening address.")
      .String("sip", "tls_certificate_dir", &c->tls_certificate_dir,
              "Directory holding agent.pem (private key and certificate chain) and cafile.pem, "
              "required by tls listeners.")
      .String("sip", "backend", &c->backend,
              "Backend registrar URI, e.g. \"sip:registrar.example.org:5060;transport=tcp\". "
              "Empty: RFC 3263 resolution (NAPTR/SRV/A/AAAA) of each request URI's domain.")
      .StringList("sip", "trusted_backends", &c->trusted_backends,
                  "Addresses whose requests count as coming from the backend: \"192.0.2.10\" or "
                  "\"192.0.2.10:5060\" (IPv6 in brackets with a port). The backend URI's host is "
                  "added when it is an IP address (with its port for UDP).")
      .StringList("sip", "domains", &c->domains,
                  "Registration domains served: \"*\" for all, \"example.org\", or "
                  "\"*.example.org\" for its subdomains. Other REGISTERs get 403.")
      .Bool("sip", "insert_domain", &c->insert_domain,
            "Masquerade contacts with the AOR's domain instead of the phone's address "
            "(the gateway then finds the phone through its own registrar).")
      .String("sip", "masquerade_secret", &c->masquerade_secret,
              "Secret authenticating masqueraded contacts (HMAC). All replicas must share it. "
              "Empty with no masquerade_secret_file: a random one is generated at start (a "
              "warning is logged; contacts registered before a restart become invalid).")
      .String("sip", "masquerade_secret_file", &c->masquerade_secret_file,
              "File holding the masquerade secret (surrounding whitespace ignored); takes "
              "precedence over masquerade_secret.")
      .Duration("sip", "t1", &c->t1, absl::Milliseconds(10), absl::Seconds(10),
                "SIP timer T1 (round-trip estimate; retransmission base).")
      .Duration("sip", "transaction_timeout", &c->transaction_timeout, absl::Milliseconds(100),
                absl::Minutes(5),
                "How long to wait for the backend's final answer (timer F, 64*T1 in RFC 3261); "
                "then the phone gets 408.")
      .Int("sip", "max_pending_registers", &c->max_pending_registers, 1, 10'000'000,
           "REGISTERs waiting for the backend at most; beyond it the oldest get 503.")
      .Duration("sip", "drain_timeout", &c->drain_timeout, absl::ZeroDuration(), absl::Minutes(5),
                "On SIGTERM: how long transactions in progress may take to finish.");
}

void AddRegistrarSection(config::Schema& s, ProxyConfig* c) {
  s.Section("registrar", "Registration rules of the gateway's own registrar.")
      .Duration("registrar", "min_expires", &c->min_expires, absl::Seconds(1), absl::Hours(24),
                "Shorter non-zero expiries are refused with 423 Interval Too Brief.")
      .Duration("registrar", "max_expires", &c->max_expires, absl::Seconds(1), absl::Hours(24 * 30),
                "Longer expiries are lowered to this.")
      .Duration("registrar", "default_expires", &c->default_expires, absl::Seconds(1),
                absl::Hours(24 * 30), "Expiry of a contact that gives none.")
      .Int("registrar", "max_contacts_per_aor", &c->max_contacts_per_aor, 1, 1000,
           "Bindings per AOR; the least recently updated are evicted beyond it.")
      .Int("registrar", "max_contacts_per_register", &c->max_contacts_per_register, 1, 1000,
           "Contacts in one REGISTER; more gets 403.");
}

void AddStoreSection(config::Schema& s, ProxyConfig* c) {
  s.Section("store", "Where bindings are kept.")
      .String("store", "kind", &c->store_kind,
              "\"memory\" (embedded, lost on restart) or \"redis\" (shared by replicas).",
              {"memory", "redis"})
      .String("store", "redis_address", &c->redis_address,
              "Redis server for kind = \"redis\": \"tcp://10.0.0.5:6379\" (IPv6 "
              "\"tcp://[::1]:6379\"; prefer an IP literal, a name is resolved blocking) or "
              "\"unix:/run/redis.sock\". Redis >= 6.2.")
      .String("store", "redis_username", &c->redis_username, "ACL user for AUTH (empty: default).")
      .String("store", "redis_password", &c->redis_password,
              "AUTH password (empty: no AUTH). Prefer PUSHGATE_STORE_REDIS_PASSWORD.")
      .Int("store", "redis_db", &c->redis_db, 0, 1000, "SELECT index.")
      .Duration("store", "redis_op_timeout", &c->redis_op_timeout, absl::Milliseconds(10),
                absl::Seconds(30), "A Redis command without a reply by then fails (503).")
      .String("store", "redis_key_prefix", &c->redis_key_prefix,
              "Prefix of every Redis key; replicas sharing a registrar use the same one.")
      .Int("store", "retry_after", &c->store_retry_after, 1, 3600,
           "Retry-After (seconds) of the 503 answered when the store fails.");
}

void AddPushSection(config::Schema& s, ProxyConfig* c) {
  s.Section("push", "The pusher service that wakes sleeping phones (pushgate-pusher, gRPC).")
      .String("push", "target", &c->push_target,
              "gRPC target of the pusher; \"dns:///pusher:50061\" balances (round robin) over "
              "every address the name resolves to. Empty: no pushes (calls still ring the "
              "phones that are reachable).")
      .String("push", "api_key_file", &c->push_api_key_file,
              "File holding the API key sent as x-api-key (surrounding whitespace ignored); "
              "empty: none.")
      .Duration("push", "timeout", &c->push_timeout, absl::Milliseconds(50), absl::Minutes(1),
                "Deadline of one push request; a late push is counted as failed.")
      .Bool("push", "send_110", &c->push_send_110,
            "Answer \"110 Push sent\" to the caller when a push goes out.")
      .String("push", "legacy_apns_team", &c->push_legacy_apns_team,
              "Apple team id (10 letters/digits) for phones registering with the legacy "
              "parameters (pn-type=apple, app-id without a team id): their pushes go to "
              "<team>.<app-id>. Empty: such phones cannot be pushed with token auth.");
}

void AddForkSection(config::Schema& s, ProxyConfig* c) {
  s.Section("fork", "Incoming calls: forking to the phones, push timing, fork late.")
      .Duration("fork", "call_timeout", &c->fork_call_timeout, absl::Seconds(1), absl::Minutes(10),
                "How long a call waits for a phone to answer (and to wake up and register).")
      .Duration("fork", "push_delay_voip", &c->fork_push_delay_voip, absl::ZeroDuration(),
                absl::Minutes(1),
                "Delay before pushing an iOS VoIP (PushKit) phone that did not ring; 0 = at once.")
      .Duration("fork", "push_delay_other", &c->fork_push_delay_other, absl::ZeroDuration(),
                absl::Minutes(1),
                "Delay before pushing other phones (FCM, APNs alert) that did not ring.")
      .Duration("fork", "alert_repeat_interval", &c->fork_alert_repeat_interval,
                absl::ZeroDuration(), absl::Minutes(10),
                "Repeat APNs alert pushes at this interval until answered; 0 = once.");
}

void AddAdminSection(config::Schema& s, ProxyConfig* c) {
  s.Section("admin", "Admin HTTP endpoint: /metrics, /healthz, /readyz.")
      .String("admin", "listen", &c->admin_listen,
              "host:port of the admin endpoint; empty disables it.")
      .Bool("admin", "bindings", &c->admin_bindings,
            "Also serve GET /bindings?aor=sip:user@domain: the registrar's bindings of one AOR "
            "as JSON (push tokens redacted, phones' addresses shown: keep the admin endpoint "
            "on a private network).");
}

void AddLogSection(config::Schema& s, ProxyConfig* c) {
  s.Section("log", "Logging.")
      .String("log", "format", &c->log.format, "\"text\" or \"json\" (one object per line).",
              {"text", "json"})
      .String("log", "level", &c->log.level, "trace, debug, info, warn, error, critical or off.",
              {"trace", "debug", "info", "warn", "error", "critical", "off"})
      .String("log", "components", &c->log.components,
              "Per-component levels: \"proxy.sofia=debug,proxy=info\".");
}

// Limits against stuck transactions and hostile peers.
void AddLimitsSection(config::Schema& s, ProxyConfig* c) {
  s.Section("limits", "Limits against stuck transactions and hostile peers.")
      .Duration("limits", "timer_c", &c->timer_c, absl::Seconds(1), absl::Hours(1),
                "Timer C (RFC 3261 16.6): a relayed INVITE without a final answer this long is "
                "cancelled and the caller answered 408. Above fork.call_timeout (RFC 3261 asks "
                "for more than 3 minutes).")
      .Int("limits", "max_message_size", &c->max_message_size, int64_t{64} * 1024,
           int64_t{16} * 1024 * 1024,
           "Largest SIP message accepted over TCP/TLS, in bytes: a larger one is refused while "
           "it arrives, before it is parsed. 64 KiB, as Kamailio's, is also the least: sofia "
           "aborts on a UDP datagram above the limit, so it stays above any datagram.")
      .Duration("limits", "connection_idle_timeout", &c->connection_idle_timeout,
                absl::ZeroDuration(), absl::Hours(24),
                "A TCP/TLS connection that carries no registered flow and no transaction is "
                "closed after this long without traffic; 0 = never. 120 s, as Kamailio's "
                "tcp_connection_lifetime (registered flows stay until their binding expires). "
                "CRLF keep-alives (RFC 5626) count as traffic and get a CRLF pong.")
      .Duration("limits", "message_timeout", &c->message_timeout, absl::ZeroDuration(),
                absl::Minutes(10),
                "A message must arrive completely within this long of its first byte (the first "
                "message: of the connection's opening), else its TCP/TLS connection is closed "
                "(slowloris, silent connections, TLS handshakes never finished); 0 = no "
                "deadline.")
      .Int("limits", "max_header_lines", &c->max_header_lines, 32, 1024,
           "Most lines a message head may have (start line and header lines), counted on the "
           "socket (TLS: once decrypted) before sofia parses: a UDP datagram over it is "
           "dropped, a TCP/TLS connection closed. sofia's parse is quadratic in the lines (16,000 "
           "short "
           "lines: over a second of the loop); at 256 the worst message costs about 2x a "
           "normal request per byte, at 1024 about 10x. Real requests have a few dozen.")
      .Int("limits", "max_connections", &c->max_connections, 1, 1'000'000,
           "TCP/TLS connections open at most (Kamailio's tcp_max_connections); one more is "
           "closed as soon as it is accepted. Keep the descriptor limit (ulimit -n) above it.")
      .Int("limits", "max_connections_per_source", &c->max_connections_per_source, 0, 1'000'000,
           "TCP/TLS connections open at most from one IP address (trusted backends exempt); "
           "0 = no limit. A phone holds one (two with RFC 5626 outbound): 64 lets an office of "
           "phones behind one NAT address through, while one address takes at most 1/32 of "
           "max_connections (Kamailio has no such limit by default).")
      .Int("limits", "rate_limit_requests", &c->rate_limit_requests, 0, 1'000'000,
           "Requests one source address may send per rate_limit_window (Kamailio's pike "
           "default); beyond, it is blocked for rate_limit_block. Trusted backends are exempt. "
           "0 = no limit.")
      .Duration("limits", "rate_limit_window", &c->rate_limit_window, absl::Milliseconds(100),
                absl::Hours(1), "The rate limit's counting window.")
      .Duration("limits", "rate_limit_block", &c->rate_limit_block, absl::ZeroDuration(),
                absl::Hours(24), "How long a source over its budget stays blocked.")
      .Int("limits", "rate_limit_sources", &c->rate_limit_sources, 1, 100'000'000,
           "Source addresses tracked at most (the least recently seen are forgotten first).")
      .Bool("limits", "rate_limit_silent", &c->rate_limit_silent,
            "Blocked requests get no answer (true) instead of 503 with Retry-After (false).");
}

}  // namespace

config::Schema MakeProxySchema(ProxyConfig* c) {
  config::Schema s("pushgate-proxy");
  AddSipSection(s, c);
  AddRegistrarSection(s, c);
  AddStoreSection(s, c);
  AddPushSection(s, c);
  AddForkSection(s, c);
  AddAdminSection(s, c);
  AddLogSection(s, c);
  AddLimitsSection(s, c);
  return s;
}

absl::StatusOr<std::pair<std::string, int>> ParseHostPort(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  std::string host;
  absl::string_view rest;
  if (absl::ConsumePrefix(&text, "[")) {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": unterminated ["));
    }
    host = std::string(text.substr(0, close));
    rest = text.substr(close + 1);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" has no :port"));
    }
    host = std::string(text.substr(0, colon));
    rest = text.substr(colon);
    if (host.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\": an IPv6 address must be in brackets"));
    }
  }
  int port = 0;
  if (!absl::ConsumePrefix(&rest, ":") || !absl::SimpleAtoi(rest, &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" has no valid :port"));
  }
  if (host.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" has no host"));
  return std::make_pair(host, port);
}

absl::StatusOr<TransportInfo> ParseTransportAddress(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not transport:address:port"));
  }
  ASSIGN_OR_RETURN(Transport transport, ParseTransport(text.substr(0, colon)));
  auto hp = ParseHostPort(text.substr(colon + 1));
  if (!hp.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not transport:address:port: ", hp.status().message()));
  }
  return TransportInfo{transport, hp->first, static_cast<uint16_t>(hp->second)};
}

namespace {

absl::Status KeyError(absl::string_view key, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", message));
}

// sip.listen, sip.advertise, sip.tls_certificate_dir.
absl::Status ListenOptions(const ProxyConfig& c, sofia::SipProxyOptions& o) {
  o.listen.clear();
  if (c.listen.empty()) return KeyError("sip.listen", "at least one listener is required");
  for (const std::string& l : c.listen) {
    auto t = ParseTransportAddress(l);
    if (!t.ok()) return KeyError("sip.listen", t.status().message());
    if (t->transport == Transport::kTls && c.tls_certificate_dir.empty()) {
      return KeyError("sip.listen", absl::StrCat("\"", l, "\" needs sip.tls_certificate_dir"));
    }
    o.listen.push_back(*t);
  }
  for (const std::string& a : c.advertise) {
    auto t = ParseTransportAddress(a);
    if (!t.ok()) return KeyError("sip.advertise", t.status().message());
    if (t->port == 0) return KeyError("sip.advertise", absl::StrCat("\"", a, "\" needs a port"));
    o.advertise.push_back(*t);
  }
  o.tls_certificate_dir = c.tls_certificate_dir;
  if (!c.tls_certificate_dir.empty()) {
    std::ifstream agent(c.tls_certificate_dir + "/agent.pem");
    if (!agent) {
      return KeyError("sip.tls_certificate_dir",
                      absl::StrCat("cannot read ", c.tls_certificate_dir, "/agent.pem"));
    }
  }
  return absl::OkStatus();
}

// sip.masquerade_secret_file, else sip.masquerade_secret, else a generated one.
absl::Status SecretOptions(const ProxyConfig& c, sofia::SipProxyOptions& o,
                           SecretSource* secret_source) {
  if (!c.masquerade_secret_file.empty()) {
    absl::StatusOr<std::string> secret = ReadFile(c.masquerade_secret_file);
    if (!secret.ok()) return KeyError("sip.masquerade_secret_file", secret.status().message());
    o.masquerade_secret = std::string(absl::StripAsciiWhitespace(*secret));
    if (o.masquerade_secret.empty()) {
      return KeyError("sip.masquerade_secret_file",
                      absl::StrCat(c.masquerade_secret_file, " is empty"));
    }
    if (secret_source) *secret_source = SecretSource::kFile;
  } else if (!c.masquerade_secret.empty()) {
    o.masquerade_secret = c.masquerade_secret;
    if (secret_source) *secret_source = SecretSource::kConfigured;
  } else {
    o.masquerade_secret = MasqueradeCodec::GenerateSecret();
    if (secret_source) *secret_source = SecretSource::kGenerated;
  }
  return absl::OkStatus();
}

// [registrar]
absl::Status RegistrarOptions(const ProxyConfig& c, sofia::SipProxyOptions& o) {
  if (c.min_expires > c.max_expires) {
    return KeyError("registrar.min_expires", "is above registrar.max_expires");
  }
  if (c.default_expires < c.min_expires || c.default_expires > c.max_expires) {
    return KeyError("registrar.default_expires",
                    "must lie within [registrar.min_expires, registrar.max_expires]");
  }
  o.registrar.min_expires = c.min_expires;
  o.registrar.max_expires = c.max_expires;
  o.registrar.default_expires = c.default_expires;
  o.registrar.max_contacts_per_aor = c.max_contacts_per_aor;
  o.registrar.max_contacts_per_register = c.max_contacts_per_register;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<sofia::SipProxyOptions> BuildSipProxyOptions(const ProxyConfig& c,
                                                            SecretSource* secret_source) {
  sofia::SipProxyOptions o;
  RETURN_IF_ERROR(ListenOptions(c, o));
  if (!c.backend.empty()) {
    auto uri = ParseUri(c.backend);
    if (!uri.ok()) return KeyError("sip.backend", uri.status().message());
    auto t = UriTransport(*uri);
    if (!t.ok()) return KeyError("sip.backend", t.status().message());
  }
  o.backend_uri = c.backend;
  o.trusted_backends = c.trusted_backends;
  if (c.domains.empty()) return KeyError("sip.domains", "empty: no domain would be served");
  o.domains = c.domains;
  o.insert_domain = c.insert_domain;
  RETURN_IF_ERROR(SecretOptions(c, o, secret_source));
  RETURN_IF_ERROR(RegistrarOptions(c, o));
  o.t1 = c.t1;
  o.transaction_timeout = c.transaction_timeout;
  if (c.transaction_timeout < c.t1) {
    return KeyError("sip.transaction_timeout", "is shorter than sip.t1");
  }
  if (c.timer_c <= c.fork_call_timeout) {
    return KeyError("limits.timer_c", "must be above fork.call_timeout");
  }
  o.timer_c = c.timer_c;
  o.max_message_size = static_cast<size_t>(c.max_message_size);
  o.connection_idle_timeout = c.connection_idle_timeout;
  o.message_timeout = c.message_timeout;
  if (c.max_connections_per_source > c.max_connections) {
    return KeyError("limits.max_connections_per_source", "is above limits.max_connections");
  }
  o.max_header_lines = static_cast<size_t>(c.max_header_lines);
  o.max_connections = static_cast<size_t>(c.max_connections);
  o.max_connections_per_source = static_cast<size_t>(c.max_connections_per_source);
  o.rate_limit.requests = static_cast<int>(c.rate_limit_requests);
  o.rate_limit.window = c.rate_limit_window;
  o.rate_limit.block = c.rate_limit_block;
  o.rate_limit.max_sources = static_cast<size_t>(c.rate_limit_sources);
  o.rate_limit_silent = c.rate_limit_silent;
  o.max_pending_registers = static_cast<size_t>(c.max_pending_registers);
  o.store_retry_after_seconds = c.store_retry_after;
  if (!c.push_legacy_apns_team.empty() &&
      (c.push_legacy_apns_team.size() != 10 ||
       !std::all_of(c.push_legacy_apns_team.begin(), c.push_legacy_apns_team.end(),
                    [](char ch) { return absl::ascii_isupper(ch) || absl::ascii_isdigit(ch); }))) {
    return KeyError("push.legacy_apns_team", "an Apple team id is 10 capital letters or digits");
  }
  if (!c.admin_listen.empty()) {
    auto hp = ParseHostPort(c.admin_listen);
    if (!hp.ok()) return KeyError("admin.listen", hp.status().message());
  }
  return o;
}

}  // namespace pushgate::proxy
