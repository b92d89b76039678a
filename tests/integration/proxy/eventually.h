// Eventually(): for state that signals nothing when it changes (a store's size read on the
// proxy's loop, a metrics counter, a child process's health endpoint). It checks every few
// milliseconds until `done` holds or `timeout` passes, and then says what never happened and what
// it saw last. Everything that has an event (a SIP message, a callback, a promise) waits on that
// event instead.
// Threads: runs on the calling (test) thread; `done` and `seen` are called there.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace pushgate::proxy::testing {

// `what` names what should happen ("the dead token's binding leaving the store"); `seen`, if
// given, describes the state last observed ("2 bindings stored").
inline ::testing::AssertionResult Eventually(const std::function<bool()>& done,
                                             absl::Duration timeout, absl::string_view what,
                                             const std::function<std::string()>& seen = nullptr,
                                             absl::Duration poll = absl::Milliseconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (done()) return ::testing::AssertionSuccess();
    if (absl::Now() >= deadline) break;
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(poll));
  }
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  failure << what << " did not happen within " << absl::FormatDuration(timeout);
  if (seen) failure << "; last seen: " << seen();
  return failure;
}

}  // namespace pushgate::proxy::testing
