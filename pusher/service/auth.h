// Who may push to which app: API keys (gRPC metadata "x-api-key") and mTLS client identities,
// each allowed a set of apps (the api keys file: "client-name api-key app1,app2|*"). Plain values
// in, decision out: no gRPC types.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pusher/core/config.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

class Authorizer {
 public:
  // `clients`: the api keys file. A verified client certificate whose common name is one of the
  // client names gets that client's apps; with no api keys file at all, any verified client
  // certificate (and, on an open listener, anybody) may push to every app.
  explicit Authorizer(std::vector<ApiKeyEntry> clients);

  // Identifies the caller. `api_key`: the x-api-key metadata value if any; `cert_name`: the
  // verified client certificate's common name if any. UNAUTHENTICATED saying what is wrong.
  // nullptr: no client restrictions apply.
  absl::StatusOr<const ApiKeyEntry*> Authenticate(
      const std::optional<std::string>& api_key, const std::optional<std::string>& cert_name) const;

  // PERMISSION_DENIED naming the client and app when `client` may not push there. The app is
  // the bundle id for APNs (from pn-param), the project id for FCM.
  static absl::Status CheckApp(const ApiKeyEntry* client, const v1::Destination& destination);

 private:
  std::vector<ApiKeyEntry> clients_;
  std::map<std::string, const ApiKeyEntry*> by_key_digest_;  // SHA-256 of the key
  std::map<std::string, const ApiKeyEntry*> by_name_;
};

}  // namespace pushgate::pusher
