// RFC 8599 and legacy push parameters as they arrive: a Contact header value (ParseContacts,
// with its URIs through ParseUri) whose URIs go through ParsePushParams, and everything the
// registrar derives from a parsed contact (expires, q, instance, the push key, the APNs topic).
// Oracle: a formatted contact list parses again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/core/contact.h"
#include "proxy/core/push_params.h"
#include "proxy/core/sip_uri.h"

namespace {

void Examine(const pushgate::proxy::Uri& uri) {
  using namespace pushgate::proxy;  // NOLINT(google-build-using-namespace)
  const absl::StatusOr<std::optional<PushParams>> push = ParsePushParams(uri);
  if (!push.ok() || !push->has_value()) return;
  const PushParams& p = **push;
  (void)PushKey(p);
  (void)p.ApnsTeamId();
  (void)p.ApnsTopic();
  (void)p.ApnsBundleId();
  (void)AorKey(uri);
  (void)UriTransport(uri);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pushgate::proxy;  // NOLINT(google-build-using-namespace)
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  if (absl::StatusOr<Uri> uri = ParseUri(text); uri.ok()) {
    Examine(*uri);
    (void)FormatUri(*uri);
  }
  absl::StatusOr<ContactList> contacts = ParseContacts(text);
  if (!contacts.ok()) return 0;
  for (const Contact& c : contacts->contacts) {
    (void)c.expires();
    (void)c.q();
    (void)c.instance();
    Examine(c.uri);
  }
  if (!contacts->wildcard && !contacts->contacts.empty() &&
      !ParseContacts(FormatContacts(*contacts)).ok()) {
    std::abort();  // what we format must parse again
  }
  return 0;
}
