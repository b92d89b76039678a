// sofia's own log lines through spdlog, rate limited. At the descriptor limit nta logs
// "nta_agent: tport: Too many open files" once per failed accept, hundreds of thousands of lines
// a second to stderr (issue 13: 3.3 GB in 12 minutes); redirected, each distinct message format
// is logged at most once per interval and the rest only counted
// (pushgate_proxy_sofia_log_lines_total{shown="true"|"false"}).
//
// Threads: any (sofia logs from the loop thread; the counts are atomic, the table locked).
#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace pushgate::proxy::sofia {

// Redirects nta's and tport's logs (the first call wins; later calls change nothing).
void RedirectSofiaLogs(absl::Duration interval = absl::Seconds(10));

struct SofiaLogCounts {
  uint64_t shown = 0;
  uint64_t suppressed = 0;
};
// The lines shown and suppressed since the redirect.
SofiaLogCounts SofiaLogStats();

}  // namespace pushgate::proxy::sofia
