// Connections (TCP/TLS tports) that phones registered over, so later requests can reach a phone
// over its own connection (RFC 5626 flows). A flow token is an opaque string stored in the
// Binding; the table keeps a tport reference for as long as a binding may use it. Loop thread
// only.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "proxy/sofia/sofia_util.h"

namespace pushgate::proxy::sofia {

class FlowTable final {
 public:
  explicit FlowTable(std::string prefix) : prefix_(std::move(prefix)) {}

  // The token of `tp` (the same for every REGISTER over one connection), keeping the tport
  // referenced until at least `keep_until`.
  std::string Register(tport_t* tp, absl::Time keep_until);

  // The live transport of a token; null when unknown, expired or closed.
  tport_t* Lookup(const std::string& token, absl::Time now);

  // Releases flows past their keep time or whose connection closed. Returns how many.
  size_t Sweep(absl::Time now);

  size_t size() const { return by_token_.size(); }

 private:
  struct Flow {
    TportRef tport;
    absl::Time keep_until;
  };
  std::string prefix_;
  uint64_t next_ = 1;
  absl::flat_hash_map<std::string, Flow> by_token_;
  absl::flat_hash_map<tport_t*, std::string> by_tport_;
};

}  // namespace pushgate::proxy::sofia
