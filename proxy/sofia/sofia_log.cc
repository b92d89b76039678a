#include "proxy/sofia/sofia_log.h"

#include <sofia-sip/su_log.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "common/log.h"
#include "common/metrics.h"

// Exported by libsofia-sip-ua, not declared in its public headers.
extern "C" {
extern su_log_t nta_log[];
extern su_log_t tport_log[];
}

namespace pushgate::proxy::sofia {
namespace {

struct State {
  absl::Duration interval;
  std::mutex mu;
  // Per format string (sofia passes literals): when it was last shown, how many since.
  struct Seen {
    absl::Time shown;
    uint64_t suppressed = 0;
  };
  absl::flat_hash_map<const char*, Seen> seen;
  std::atomic<uint64_t> shown{0};
  std::atomic<uint64_t> suppressed{0};
  metrics::Counter* shown_metric = nullptr;
  metrics::Counter* suppressed_metric = nullptr;
};

State* g_state = nullptr;

void OnSofiaLog(void* stream, const char* fmt, va_list ap) {
  auto* st = static_cast<State*>(stream);
  const absl::Time now = absl::Now();
  uint64_t skipped = 0;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    State::Seen& seen = st->seen[fmt];
    if (seen.shown != absl::Time() && now - seen.shown < st->interval) {
      ++seen.suppressed;
      st->suppressed.fetch_add(1);
      st->suppressed_metric->Inc();
      return;
    }
    skipped = seen.suppressed;
    seen = State::Seen{now, 0};
  }
  char buf[512];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  st->shown.fetch_add(1);
  st->shown_metric->Inc();
  std::string line(absl::StripTrailingAsciiWhitespace(buf));
  if (skipped > 0) {
    log::Get("proxy.sofia")->warn("sofia: {} ({} more like it suppressed)", line, skipped);
  } else {
    log::Get("proxy.sofia")->warn("sofia: {}", line);
  }
}

}  // namespace

void RedirectSofiaLogs(absl::Duration interval) {
  static std::once_flag once;
  std::call_once(once, [interval] {
    g_state = new State();  // lives as long as sofia may log: the process
    g_state->interval = interval;
    auto& r = metrics::Registry::Default();
    const char* help = "sofia-sip log lines, shown or suppressed by the rate limit.";
    g_state->shown_metric =
        &r.GetCounter("pushgate_proxy_sofia_log_lines_total", help, {{"shown", "true"}});
    g_state->suppressed_metric =
        &r.GetCounter("pushgate_proxy_sofia_log_lines_total", help, {{"shown", "false"}});
    su_log_redirect(nta_log, &OnSofiaLog, g_state);
    su_log_redirect(tport_log, &OnSofiaLog, g_state);
  });
}

SofiaLogCounts SofiaLogStats() {
  if (g_state == nullptr) return {};
  return {g_state->shown.load(), g_state->suppressed.load()};
}

}  // namespace pushgate::proxy::sofia
