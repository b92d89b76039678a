// The call half's metrics (CallRouter): calls by outcome, pushes by result, branches, fork-late
// deliveries, open calls. Registered once in the default registry; any thread.
#pragma once

#include <string>

#include "common/metrics.h"

namespace pushgate::proxy::sofia {

struct CallMetrics {
  static CallMetrics& Get() {
    static CallMetrics* m = new CallMetrics();
    return *m;
  }

  metrics::Registry& r = metrics::Registry::Default();
  metrics::Counter& Calls(const std::string& result) {
    return r.GetCounter("pushgate_proxy_calls_total",
                        "Incoming calls (INVITE/MESSAGE from the backend) by final outcome.",
                        {{"result", result}});
  }
  metrics::Counter& Pushes(const std::string& result) {
    return r.GetCounter("pushgate_proxy_call_pushes_total",
                        "Pushes requested for incoming calls, by result.", {{"result", result}});
  }
  metrics::Counter& PushFailedCalls() {
    return r.GetCounter("pushgate_proxy_calls_push_failed_total",
                        "Calls answered 480 with a Reason header because no push could be sent "
                        "to any of the callee's phones.");
  }
  metrics::Counter& Branches() {
    return r.GetCounter("pushgate_proxy_call_branches_total",
                        "Requests sent to phones (fork branches, including late ones).");
  }
  metrics::Counter& LateDeliveries() {
    return r.GetCounter("pushgate_proxy_call_late_deliveries_total",
                        "Registrations that reached an open fork (fork late).");
  }
  metrics::Counter& ReleasedAnswers(const std::string& reason) {
    return r.GetCounter("pushgate_proxy_call_released_answers_total",
                        "2xx answers of phones that no caller could take (it hung up, another "
                        "phone answered, the call was over), ended by the gateway with ACK and "
                        "BYE, by reason.",
                        {{"reason", reason}});
  }
  metrics::Gauge& Open() {
    return r.GetGauge("pushgate_proxy_calls_open", "Incoming calls in progress.");
  }
};

}  // namespace pushgate::proxy::sofia
