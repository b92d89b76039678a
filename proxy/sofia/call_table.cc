#include "proxy/sofia/call_table.h"

#include <sofia-sip/sip.h>

#include <string>
#include <utility>

namespace pushgate::proxy::sofia {

CallInfo CallInfoOf(const sip_t* sip) {
  CallInfo info;
  if (sip->sip_call_id && sip->sip_call_id->i_id) info.call_id = sip->sip_call_id->i_id;
  if (sip->sip_from) {
    info.caller_uri = UrlString(sip->sip_from->a_url);
    if (sip->sip_from->a_display) {
      std::string d = sip->sip_from->a_display;
      if (d.size() >= 2 && d.front() == '"' && d.back() == '"') d = d.substr(1, d.size() - 2);
      info.caller_display_name = d;
    }
  }
  return info;
}

Call& CallTable::Add(std::unique_ptr<Call> call) {
  call->id = next_id_++;
  Call& ref = *call;
  by_aor_[ref.aor].insert(ref.id);
  calls_.emplace(ref.id, std::move(call));
  return ref;
}

Call* CallTable::Find(uint64_t id) const {
  auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : it->second.get();
}

std::vector<uint64_t> CallTable::OfAor(const std::string& aor) const {
  auto it = by_aor_.find(aor);
  if (it == by_aor_.end()) return {};
  return std::vector<uint64_t>(it->second.begin(), it->second.end());
}

bool CallTable::Remove(uint64_t id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return false;
  if (auto by_aor = by_aor_.find(it->second->aor); by_aor != by_aor_.end()) {
    by_aor->second.erase(id);
    if (by_aor->second.empty()) by_aor_.erase(by_aor);
  }
  calls_.erase(it);
  return true;
}

void CallTable::Clear() {
  calls_.clear();
  by_aor_.clear();
}

}  // namespace pushgate::proxy::sofia
