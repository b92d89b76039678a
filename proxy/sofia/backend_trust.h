// Who counts as the backend: requests from a trusted backend address (the configured list, plus
// the backend URI's own address when it is an IP literal) are the backend's; an in-dialog
// request may go on toward the backend (its URI, a trusted address, or without a backend an
// explicitly allowed domain). Plain values only.
//
// (The proxy's route set, with our own URIs per transport, is to move into proxy/core; this
// keeps the rules SipProxy had until then.) Immutable after construction; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proxy/core/domain_policy.h"
#include "proxy/core/sip_uri.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy::sofia {

class BackendTrust final {
 public:
  // `trusted`: "host", "[v6]" or "host:port" entries (sip.trusted_backends).
  BackendTrust(std::optional<Uri> backend, std::vector<std::string> trusted, DomainPolicy domains);

  // The request came from a trusted backend address.
  bool From(const std::optional<TransportInfo>& source) const;
  // An in-dialog request whose next hop is `next` goes toward the backend.
  bool TowardBackend(const Uri& next) const;

  const std::vector<std::string>& trusted() const { return trusted_; }

 private:
  std::optional<Uri> backend_;
  std::vector<std::string> trusted_;
  DomainPolicy domains_;
};

}  // namespace pushgate::proxy::sofia
