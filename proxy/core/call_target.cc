#include "proxy/core/call_target.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "proxy/core/register_plan.h"
#include "proxy/core/sip_uri.h"

namespace pushgate::proxy {

CallTarget CallTarget::Aor(std::string aor) {
  CallTarget t;
  t.aor = std::move(aor);
  return t;
}

CallTarget CallTargetOf(const MasqueradeTarget& target) {
  CallTarget t = CallTarget::Aor(target.aor.empty() ? AorKey(target.restored) : target.aor);
  if (target.insert_domain) return t;
  t.whole_aor = false;
  t.device_tag = target.device_tag;
  t.user = target.user;
  t.address = target.original;
  return t;
}

std::vector<Binding> SelectBindings(const CallTarget& target, std::vector<Binding> bindings) {
  if (target.whole_aor) return bindings;
  auto is_target = [&](const Binding& b) {
    if (!target.device_tag.empty()) return DeviceTag(DeviceKey(b)) == target.device_tag;
    return b.contact.user == target.user && ContactAddress(b.contact) == target.address;
  };
  const Binding* best = nullptr;
  for (const Binding& b : bindings) {
    if (is_target(b) && (best == nullptr || b.updated_at > best->updated_at)) best = &b;
  }
  if (best == nullptr) return {};
  return {*best};
}

std::string MergeKey(const CallTarget& target, const std::vector<Binding>& selected,
                     absl::string_view call_id, absl::string_view from_tag, uint32_t cseq) {
  if (target.whole_aor || selected.empty()) return "";
  std::string device = DeviceKey(selected.front());
  if (device.empty()) device = absl::StrCat("contact:", FormatUri(selected.front().contact));
  return absl::StrCat(call_id.size(), ":", call_id, from_tag.size(), ":", from_tag, cseq, "|",
                      device);
}

ForkScope ScopeOf(const CallTarget& target) {
  return target.whole_aor ? ForkScope::kAor : ForkScope::kDevice;
}

std::string DebugString(const CallTarget& target) {
  if (target.whole_aor) return absl::StrCat("aor ", target.aor);
  if (target.device_tag.empty()) {
    return absl::StrCat("contact ", target.user, "@", target.address.host, ":", target.address.port,
                        " of ", target.aor);
  }
  return absl::StrCat("device ", absl::BytesToHexString(target.device_tag), " of ", target.aor);
}

}  // namespace pushgate::proxy
