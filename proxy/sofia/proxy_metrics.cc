#include "proxy/sofia/proxy_metrics.h"

#include "absl/strings/str_cat.h"

namespace pushgate::proxy::sofia {
namespace {

// Metric label for a method: the usual ones by name, anything else "other" (bounded cardinality).
absl::string_view MethodLabel(absl::string_view method) {
  static const char* kKnown[] = {"REGISTER", "INVITE",  "ACK",    "BYE",       "CANCEL",
                                 "OPTIONS",  "MESSAGE", "NOTIFY", "SUBSCRIBE", "INFO",
                                 "UPDATE",   "PRACK",   "REFER",  "PUBLISH"};
  for (const char* m : kKnown) {
    if (method == m) return m;
  }
  return "other";
}

}  // namespace

metrics::Counter& InvalidMessages(absl::string_view kind) {
  return metrics::Registry::Default().GetCounter(
      "pushgate_proxy_invalid_messages_total",
      "Messages failing validation (requests answered 400; ACKs and responses dropped), by kind.",
      {{"kind", std::string(kind)}});
}

metrics::Counter& ProxyMetrics::Cached(Cache& cache, absl::string_view key, const char* name,
                                       const char* help, const char* label) {
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache.emplace(key, &r_.GetCounter(name, help, {{label, std::string(key)}})).first;
  }
  return *it->second;
}

metrics::Counter& ProxyMetrics::Registrations(absl::string_view result) {
  return Cached(registrations_, result, "pushgate_proxy_registrations_total",
                "REGISTER requests handled, by result.", "result");
}

metrics::Counter& ProxyMetrics::Forwarded(absl::string_view method) {
  return Cached(forwarded_, MethodLabel(method), "pushgate_proxy_forwarded_requests_total",
                "Requests forwarded to the backend, by method.", "method");
}

metrics::Counter& ProxyMetrics::Responses(int status) {
  return Cached(responses_, absl::StrCat(status / 100, "xx"), "pushgate_proxy_responses_total",
                "Final responses sent to clients, by status class.", "class");
}

metrics::Counter& ProxyMetrics::Rejected(absl::string_view reason) {
  return Cached(rejected_, reason, "pushgate_proxy_rejected_requests_total",
                "Non-REGISTER requests refused, by reason.", "reason");
}

metrics::Counter& ProxyMetrics::RateLimit(absl::string_view verdict) {
  return Cached(rate_limit_, verdict, "pushgate_proxy_rate_limit_total",
                "Requests by per-source rate-limit verdict.", "verdict");
}

}  // namespace pushgate::proxy::sofia
