// The SIP proxy's metrics. Handles are looked up once per label value and cached, so the hot
// path never takes the registry's lock. Loop thread only.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"

namespace pushgate::proxy::sofia {

// pushgate_proxy_invalid_messages_total{kind}: messages failing message_check.h, by kind
// ("request": answered 400; "ack", "response": dropped). Any thread (the registry locks).
metrics::Counter& InvalidMessages(absl::string_view kind);

class ProxyMetrics final {
 public:
  // pushgate_proxy_registrations_total{result}: REGISTER requests handled.
  metrics::Counter& Registrations(absl::string_view result);
  // pushgate_proxy_forwarded_requests_total{method}: requests sent to the backend.
  metrics::Counter& Forwarded(absl::string_view method);
  // pushgate_proxy_responses_total{class}: final responses sent to clients.
  metrics::Counter& Responses(int status);
  // pushgate_proxy_rejected_requests_total{reason}: requests refused (not REGISTER checks).
  metrics::Counter& Rejected(absl::string_view reason);
  // pushgate_proxy_rate_limit_total{verdict}: requests by rate-limit verdict (allowed, blocked,
  // exempt: from a trusted backend).
  metrics::Counter& RateLimit(absl::string_view verdict);
  // pushgate_proxy_transactions_in_flight.
  metrics::Gauge& InFlight() { return in_flight_; }
  // pushgate_proxy_timer_c_total: relayed INVITEs cancelled by timer C.
  metrics::Counter& TimerC() { return timer_c_; }

 private:
  using Cache = absl::flat_hash_map<std::string, metrics::Counter*>;
  metrics::Counter& Cached(Cache& cache, absl::string_view key, const char* name, const char* help,
                           const char* label);

  metrics::Registry& r_ = metrics::Registry::Default();
  Cache registrations_;
  Cache forwarded_;
  Cache responses_;
  Cache rejected_;
  Cache rate_limit_;
  metrics::Gauge& in_flight_ =
      r_.GetGauge("pushgate_proxy_transactions_in_flight",
                  "Proxied transactions waiting for the backend or the store.");
  metrics::Counter& timer_c_ =
      r_.GetCounter("pushgate_proxy_timer_c_total",
                    "Relayed INVITEs cancelled (and answered 408) by timer C.", {});
};

}  // namespace pushgate::proxy::sofia
