#include "proxy/sofia/flow_table.h"

#include <sofia-sip/tport.h>

#include <vector>

#include "absl/strings/str_cat.h"

namespace pushgate::proxy::sofia {

std::string FlowTable::Register(tport_t* tp, absl::Time keep_until) {
  if (auto it = by_tport_.find(tp); it != by_tport_.end()) {
    Flow& flow = by_token_[it->second];
    if (keep_until > flow.keep_until) flow.keep_until = keep_until;
    return it->second;
  }
  std::string token = absl::StrCat(prefix_, "-", next_++);
  by_token_[token] = Flow{TportRef(tp), keep_until};
  by_tport_[tp] = token;
  return token;
}

tport_t* FlowTable::Lookup(const std::string& token, absl::Time now) {
  auto it = by_token_.find(token);
  if (it == by_token_.end()) return nullptr;
  tport_t* tp = it->second.tport.get();
  if (it->second.keep_until <= now || tport_is_closed(tp) || tport_is_shutdown(tp)) return nullptr;
  return tp;
}

size_t FlowTable::Sweep(absl::Time now) {
  std::vector<std::string> dead;
  for (const auto& [token, flow] : by_token_) {
    tport_t* tp = flow.tport.get();
    if (flow.keep_until <= now || tport_is_closed(tp) || tport_is_shutdown(tp)) {
      dead.push_back(token);
    }
  }
  for (const std::string& token : dead) {
    auto it = by_token_.find(token);
    by_tport_.erase(it->second.tport.get());
    by_token_.erase(it);
  }
  return dead.size();
}

}  // namespace pushgate::proxy::sofia
