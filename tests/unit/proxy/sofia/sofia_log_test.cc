#include "proxy/sofia/sofia_log.h"

#include <gtest/gtest.h>
#include <sofia-sip/su_debug.h>
#include <sofia-sip/su_log.h>

extern "C" {
extern su_log_t tport_log[];
}

namespace pushgate::proxy::sofia {
namespace {

// What nta logs per failed accept at the descriptor limit, a thousand times: shown once.
TEST(SofiaLogTest, RepeatedLinesAreShownOncePerIntervalAndCounted) {
  RedirectSofiaLogs(absl::Minutes(10));
  const SofiaLogCounts before = SofiaLogStats();
  for (int i = 0; i < 1000; ++i)
    su_llog(tport_log, 0, "tport: accept: %s\n", "Too many open files");
  const SofiaLogCounts after = SofiaLogStats();
  EXPECT_EQ(after.shown - before.shown, 1u);
  EXPECT_EQ(after.suppressed - before.suppressed, 999u);
}

}  // namespace
}  // namespace pushgate::proxy::sofia
