#include "proxy/sofia/message_class.h"

#include <sofia-sip/msg_mclass.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>

#include <array>
#include <optional>

namespace pushgate::proxy::sofia {
namespace {

constexpr int kShortForms = 26;  // sofia indexes compact header names by letter: 'a'..'z'

msg_update_f* DefaultViaUpdate() { return sip_via_class->hc_update; }

// sofia's Via parameter update, then maddr forgotten (the parameter text stays).
int ViaUpdateWithoutMaddr(msg_common_t* h, char const* name, isize_t namelen, char const* value) {
  const int result = DefaultViaUpdate()(h, name, namelen, value);
  reinterpret_cast<sip_via_t*>(h)->v_maddr = nullptr;
  return result;
}

msg_mclass_t* Build() {
  static msg_hclass_t via = [] {
    msg_hclass_s copy = *sip_via_class;
    copy.hc_update = &ViaUpdateWithoutMaddr;
    return copy;
  }();
  // The default table size: its array is declared with that many entries (a larger clone would
  // be indexed past the declared bounds), and it has room for the second Via entry (sofia's
  // SIP class fills about half of it).
  msg_mclass_t* mc = msg_mclass_clone(sip_default_mclass(), 0, 0);
  if (mc == nullptr) return nullptr;
  const int n = mc->mc_hash_size;
  if (mc->mc_hash_used + 1 >= n) return nullptr;  // no room: sofia's class is used as it is
  std::optional<unsigned short> offset;
  for (int i = 0; i < n; ++i) {
    if (mc->mc_hash[i].hr_class != sip_via_class) continue;
    mc->mc_hash[i].hr_class = &via;  // what the parser finds by name
    offset = mc->mc_hash[i].hr_offset;
  }
  if (!offset) return nullptr;
  // sofia's own Via class stays too, further down the same probe chain: the parser stops at
  // ours (the first by name), while inserting a Via made by sip_via_create (nta's own, ours)
  // looks its class up by pointer (msg_hclass_offset).
  for (int j = static_cast<int>(static_cast<unsigned>(sip_via_class->hc_hash) %
                                static_cast<unsigned>(n)),
           steps = 0;
       steps < n; j = (j + 1) % n, ++steps) {
    if (mc->mc_hash[j].hr_class != nullptr) continue;
    mc->mc_hash[j].hr_class = sip_via_class;
    mc->mc_hash[j].hr_offset = *offset;
    mc->mc_hash_used++;
    break;
  }
  if (mc->mc_short != nullptr) {
    static std::array<msg_href_t, kShortForms> short_forms;
    for (int i = 0; i < kShortForms; ++i) {
      short_forms[i] = mc->mc_short[i];
      if (short_forms[i].hr_class == sip_via_class) short_forms[i].hr_class = &via;
    }
    mc->mc_short = short_forms.data();
  }
  return mc;
}

}  // namespace

msg_mclass_t const* ProxyMessageClass() {
  static msg_mclass_t const* const mc = Build();
  return mc != nullptr ? mc : sip_default_mclass();
}

}  // namespace pushgate::proxy::sofia
